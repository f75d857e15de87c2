//! The `Accepted` condition on each scrape object a Prometheus selects, so that
//! `kubectl get podmonitor NAME -o yaml` tells the object's owner whether it is in the config
//! and, if not, why: `status.bindings[]` in prometheus-operator's shape (one binding per
//! Prometheus), which the operator writes only behind its `StatusForConfigurationResources`
//! gate.
//!
//! Each Prometheus's bindings are written by server-side apply on the object's `/status` with
//! a field manager of its own ([`manager`]): `bindings` is a map keyed by the Prometheus, so
//! each manager owns its entry, and applying none removes it, leaving other writers' entries
//! alone (the real operator's among them). A binding is written only when it would change,
//! and removed when the object is no longer selected or its Prometheus is gone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::Mutex;

use super::check::Verdicts;
use super::crd::{
    ConfigCondition, PodMonitor, Probe, Prometheus, ScrapeConfig, ServiceMonitor, WorkloadBinding,
};
use super::secret::MANAGER;
use super::select::key;

/// The condition type.
pub const ACCEPTED: &str = "Accepted";

/// The reason of a refusal (the operator's).
pub const INVALID: &str = "InvalidConfiguration";

/// How many status writes are in flight at once.
const PARALLEL: usize = 8;

/// A scrape object kind that carries bindings.
pub trait Bound:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
{
    /// Its bindings, as last read.
    fn bindings(&self) -> &[WorkloadBinding];
}

macro_rules! bound {
    ($($kind:ty),*) => {$(
        impl Bound for $kind {
            fn bindings(&self) -> &[WorkloadBinding] {
                self.status.as_ref().map_or(&[], |s| s.bindings.as_slice())
            }
        }
    )*};
}
bound!(ServiceMonitor, PodMonitor, Probe, ScrapeConfig);

/// The field manager of one Prometheus's bindings (at most 128 characters, as the API server
/// requires: a long name is cut and made unique by a hash).
pub fn manager(prometheus: &str) -> String {
    let readable = format!("{MANAGER}/{prometheus}");
    if readable.len() <= 128 {
        return readable;
    }
    use sha2::Digest;
    let hash = sha2::Sha256::digest(prometheus.as_bytes());
    let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    let mut cut = 128 - hex.len() - 1;
    while !readable.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{hex}", &readable[..cut])
}

/// Whether `binding` is the one of `prometheus`.
fn names(binding: &WorkloadBinding, prometheus: &Prometheus) -> bool {
    binding.group == "monitoring.coreos.com"
        && binding.resource == "prometheuses"
        && Some(binding.namespace.as_str()) == prometheus.metadata.namespace.as_deref()
        && Some(binding.name.as_str()) == prometheus.metadata.name.as_deref()
}

/// What was last written per object and Prometheus (object `kind>ns/name>prometheus`): the
/// object's resource version seen before the write and the condition written. While the
/// watch has not brought the written version yet, the stale copy is not written over again.
#[derive(Debug, Default)]
pub struct Written(Mutex<HashMap<String, (Option<String>, ConfigCondition)>>);

impl Written {
    /// Forgets the entries of Prometheuses not in `live`.
    pub async fn retain_live(&self, live: &HashSet<String>) {
        self.0
            .lock()
            .await
            .retain(|id, _| live.contains(id.rsplit('>').next().unwrap_or_default()));
    }
}

/// A change to one object's binding: the condition to write, or `None` to remove it.
struct Change<'a, K> {
    object: &'a K,
    condition: Option<ConfigCondition>,
    /// Its entry in [`Written`].
    memo: String,
}

/// Brings `prometheus`'s binding on every object of one kind in line with `verdicts` (an
/// object in neither list is not selected: its binding, if this reconciler wrote one, is
/// removed). Returns how many objects it wrote to; a write that fails is logged and retried
/// at the next reconcile, never failing the config's.
pub async fn sync<K: Bound>(
    client: &Client,
    prometheus: &Prometheus,
    objects: &[Arc<K>],
    verdicts: &Verdicts,
    written: &Written,
) -> usize {
    let name = key(prometheus);
    let manager = manager(&name);
    let accepted: HashSet<&str> = verdicts.accepted.iter().map(String::as_str).collect();
    let rejected: HashMap<&str, &str> = verdicts
        .rejected
        .iter()
        .map(|r| (r.object.as_str(), r.reason.as_str()))
        .collect();
    let mut changes = Vec::new();
    {
        let mut last = written.0.lock().await;
        for object in objects {
            let object: &K = object;
            let id = key(object);
            let verdict = match (accepted.contains(id.as_str()), rejected.get(id.as_str())) {
                (true, _) => Some(None),
                (false, Some(reason)) => Some(Some(*reason)),
                (false, None) => None,
            };
            let current = object.bindings().iter().find(|b| names(b, prometheus));
            let memo = format!("{}>{id}>{name}", K::kind(&()));
            let seen = object.resource_version();
            let condition = match verdict {
                Some(refusal) => {
                    let wanted = condition(object, refusal, current);
                    let now =
                        current.and_then(|b| b.conditions.iter().find(|c| c.type_ == ACCEPTED));
                    if now.is_some_and(|c| same(c, &wanted)) {
                        last.remove(&memo);
                        continue;
                    }
                    Some(wanted)
                }
                None if current.is_some() && owns(object, &manager) => None,
                None => {
                    last.remove(&memo);
                    continue;
                }
            };
            // Written already from this very version: the watch has not caught up yet.
            let pending = last.get(&memo).is_some_and(|(version, c)| {
                *version == seen && condition.as_ref().is_some_and(|w| same(c, w))
            });
            if pending {
                continue;
            }
            match &condition {
                Some(c) => last.insert(memo.clone(), (seen, c.clone())),
                None => last.remove(&memo),
            };
            changes.push(Change {
                object,
                condition,
                memo,
            });
        }
    }
    let count = changes.len();
    // Collected first: a stream over the closure itself is not `Send` for every lifetime.
    let mut writes = Vec::with_capacity(count);
    for change in changes {
        writes.push(write(client, prometheus, &manager, change, written));
    }
    futures::stream::iter(writes)
        .buffer_unordered(PARALLEL)
        .collect::<Vec<()>>()
        .await;
    count
}

/// Writes one change; a failure is logged and forgotten in `written`, so the next reconcile
/// writes it again.
async fn write<K: Bound>(
    client: &Client,
    prometheus: &Prometheus,
    manager: &str,
    change: Change<'_, K>,
    written: &Written,
) {
    let (object, memo) = (change.object, change.memo.clone());
    if let Err(error) = apply(client, prometheus, manager, change).await {
        tracing::warn!(
            object = %format!("{} {}", K::kind(&()), key(object)),
            %error,
            "cannot write the object's Accepted condition; retried at the next reconcile"
        );
        written.0.lock().await.remove(&memo);
    }
}

/// Whether `manager` owns part of the object's status.
fn owns<K: Resource>(object: &K, manager: &str) -> bool {
    object.meta().managed_fields.iter().flatten().any(|m| {
        m.manager.as_deref() == Some(manager) && m.subresource.as_deref() == Some("status")
    })
}

/// The condition for `object`: accepted (`refusal` is `None`) or refused with the reason;
/// its transition time kept while the status stays the same.
fn condition<K: Resource>(
    object: &K,
    refusal: Option<&str>,
    current: Option<&WorkloadBinding>,
) -> ConfigCondition {
    let status = if refusal.is_none() { "True" } else { "False" };
    let previous = current
        .and_then(|b| b.conditions.iter().find(|c| c.type_ == ACCEPTED))
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone());
    ConfigCondition {
        type_: ACCEPTED.into(),
        status: status.into(),
        reason: refusal.map(|_| INVALID.into()),
        message: refusal.map(str::to_string),
        observed_generation: object.meta().generation,
        last_transition_time: previous
            .unwrap_or_else(|| k8s_openapi::jiff::Timestamp::now().to_string()),
    }
}

/// Whether two conditions say the same (the transition time aside).
fn same(a: &ConfigCondition, b: &ConfigCondition) -> bool {
    a.type_ == b.type_
        && a.status == b.status
        && a.reason == b.reason
        && a.message == b.message
        && a.observed_generation == b.observed_generation
}

/// Applies one object's binding (or its removal).
async fn apply<K: Bound>(
    client: &Client,
    prometheus: &Prometheus,
    manager: &str,
    change: Change<'_, K>,
) -> kube::Result<()> {
    let object = change.object;
    let bindings: Vec<WorkloadBinding> = change
        .condition
        .into_iter()
        .map(|c| WorkloadBinding {
            group: "monitoring.coreos.com".into(),
            resource: "prometheuses".into(),
            name: prometheus.name_any(),
            namespace: prometheus.namespace().unwrap_or_default(),
            conditions: vec![c],
        })
        .collect();
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": { "bindings": bindings },
    });
    let api: Api<K> = Api::namespaced(client.clone(), &object.namespace().unwrap_or_default());
    match api
        .patch_status(
            &object.name_any(),
            &PatchParams::apply(manager).force(),
            &Patch::Apply(&patch),
        )
        .await
    {
        // Deleted meanwhile: nothing to say.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Removes the bindings this reconciler wrote for Prometheuses that no longer exist (`live`
/// holds the ones that do, as `namespace/name`). Returns how many objects were written.
pub async fn prune<K: Bound>(client: &Client, objects: &[Arc<K>], live: &HashSet<String>) -> usize {
    let mut count = 0;
    for object in objects {
        let object: &K = object;
        for binding in object.bindings() {
            let prometheus = format!("{}/{}", binding.namespace, binding.name);
            let manager = manager(&prometheus);
            if binding.resource != "prometheuses"
                || live.contains(&prometheus)
                || !owns(object, &manager)
            {
                continue;
            }
            let api: Api<K> =
                Api::namespaced(client.clone(), &object.namespace().unwrap_or_default());
            let patch = json!({
                "apiVersion": K::api_version(&()),
                "kind": K::kind(&()),
                "status": { "bindings": [] },
            });
            let params = PatchParams::apply(&manager).force();
            match api
                .patch_status(&object.name_any(), &params, &Patch::Apply(&patch))
                .await
            {
                Ok(_) => count += 1,
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(error) => tracing::warn!(
                    object = %format!("{} {}", K::kind(&()), key(object)),
                    %error,
                    "cannot remove the binding of a deleted Prometheus; retried later"
                ),
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manager_name_fits_the_api_servers_limit() {
        assert_eq!(
            manager("monitoring/k8s"),
            "promreload-reconciler/monitoring/k8s"
        );
        let long = format!("{}/{}", "n".repeat(63), "p".repeat(253));
        let m = manager(&long);
        assert_eq!(m.len(), 128, "{m}");
        assert_ne!(
            m,
            manager(&format!("{}/{}x", "n".repeat(63), "p".repeat(252)))
        );
    }
}
