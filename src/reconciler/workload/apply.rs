//! Writing a Prometheus's workload: the web-config Secret, in API mode the Role and
//! RoleBinding that let its Pods read the config Secret, the governing Service and the
//! StatefulSets by server-side apply, each only when it changed; StatefulSets of shards no
//! longer asked for deleted (or kept, with `shardRetentionPolicy.whenScaled: Retain`).

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PropagationPolicy};
use kube::{Api, Client, ResourceExt};

use crate::reconciler::crd::Prometheus;
use crate::reconciler::secret::MANAGER;

use super::status::{Observed, summarize};
use super::{INPUT_HASH, Workload, statefulset_name};

/// Why a workload was not written.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The Prometheus asks for something that cannot run (a missing Secret to mount): it is
    /// refused, and what runs is left as it is.
    #[error("{0}")]
    Refused(String),
    /// The API server refused or failed a request.
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// What [`apply`] did.
#[derive(Debug)]
pub struct Applied {
    /// Objects written or deleted.
    pub writes: usize,
    /// The Pods, from the StatefulSets as they stand after the writes (read once, for the
    /// writes and the status alike).
    pub observed: Observed,
}

/// Writes `workload` for `prometheus`.
pub async fn apply(
    client: &Client,
    prometheus: &Prometheus,
    workload: &Workload,
) -> Result<Applied, ApplyError> {
    let namespace = prometheus.namespace().unwrap_or_default();
    mounts_exist(client, prometheus, &namespace).await?;
    let mut writes = 0;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let current = secrets.get_opt(&workload.web_config.name_any()).await?;
    let same = current.is_some_and(|c| {
        c.data == workload.web_config.data
            && c.owner_references() == workload.web_config.owner_references()
    });
    if !same {
        let params = PatchParams::apply(MANAGER).force();
        let name = workload.web_config.name_any();
        secrets
            .patch(&name, &params, &Patch::Apply(&workload.web_config))
            .await?;
        writes += 1;
    }
    writes += apply_config_reader(client, prometheus, &namespace, workload).await?;
    if let Some(service) = &workload.service {
        writes += apply_service(client, prometheus, &namespace, service).await?;
    }
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    let mut now = Vec::with_capacity(workload.statefulsets.len());
    for want in &workload.statefulsets {
        let (wrote, current) = apply_statefulset(&statefulsets, want).await?;
        writes += wrote;
        now.push(current);
    }
    writes += prune_shards(&statefulsets, prometheus, workload.statefulsets.len()).await?;
    Ok(Applied {
        writes,
        observed: summarize(prometheus, &now),
    })
}

/// Refuses a Prometheus that mounts a Secret or ConfigMap that does not exist, or claims
/// storage of a class that does not exist, as the operator refuses it: its Pods would wait
/// for ever. A class the reconciler may not read is not checked.
async fn mounts_exist(
    client: &Client,
    prometheus: &Prometheus,
    namespace: &str,
) -> Result<(), ApplyError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for name in &prometheus.spec.secrets {
        if secrets.get_metadata_opt(name).await?.is_none() {
            return Err(ApplyError::Refused(format!(
                "spec.secrets: Secret {name:?} does not exist in namespace {namespace:?}; the \
                 Pods would never start"
            )));
        }
    }
    let class = prometheus
        .spec
        .storage
        .as_ref()
        .and_then(|s| s.volume_claim_template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.storage_class_name.as_deref())
        .filter(|c| !c.is_empty());
    if let Some(class) = class {
        let classes: Api<StorageClass> = Api::all(client.clone());
        match classes.get_metadata_opt(class).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(ApplyError::Refused(format!(
                    "spec.storage.volumeClaimTemplate.spec.storageClassName: storage class \
                     {class:?} does not exist; the Pods would never start"
                )));
            }
            Err(kube::Error::Api(e)) if e.code == 403 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for name in &prometheus.spec.config_maps {
        if config_maps.get_metadata_opt(name).await?.is_none() {
            return Err(ApplyError::Refused(format!(
                "spec.configMaps: ConfigMap {name:?} does not exist in namespace \
                 {namespace:?}; the Pods would never start"
            )));
        }
    }
    Ok(())
}

/// In API mode, applies the Role and RoleBinding that let the Pods read the config Secret
/// (before the StatefulSets, so a new Pod can read it at once); otherwise deletes them if a
/// previous mode left them.
async fn apply_config_reader(
    client: &Client,
    prometheus: &Prometheus,
    namespace: &str,
    workload: &Workload,
) -> Result<usize, ApplyError> {
    let roles: Api<Role> = Api::namespaced(client.clone(), namespace);
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams::apply(MANAGER).force();
    let Some((role, binding)) = &workload.config_reader else {
        let name = super::service::config_reader_name(prometheus);
        let mut deleted = 0;
        if roles.get_metadata_opt(&name).await?.is_some() {
            roles.delete(&name, &DeleteParams::default()).await?;
            deleted += 1;
        }
        if bindings.get_metadata_opt(&name).await?.is_some() {
            bindings.delete(&name, &DeleteParams::default()).await?;
            deleted += 1;
        }
        return Ok(deleted);
    };
    let mut writes = 0;
    let current = roles.get_opt(&role.name_any()).await?;
    if !current
        .is_some_and(|c| c.rules == role.rules && c.owner_references() == role.owner_references())
    {
        roles
            .patch(&role.name_any(), &params, &Patch::Apply(role))
            .await?;
        writes += 1;
    }
    let current = bindings.get_opt(&binding.name_any()).await?;
    let same = current.is_some_and(|c| {
        c.subjects == binding.subjects
            && c.role_ref == binding.role_ref
            && c.owner_references() == binding.owner_references()
    });
    if !same {
        bindings
            .patch(&binding.name_any(), &params, &Patch::Apply(binding))
            .await?;
        writes += 1;
    }
    Ok(writes)
}

/// Applies the shared governing Service with a field manager of this Prometheus's own, so
/// each Prometheus of the namespace keeps its owner reference in it (a list keyed by uid).
async fn apply_service(
    client: &Client,
    prometheus: &Prometheus,
    namespace: &str,
    want: &Service,
) -> Result<usize, ApplyError> {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    if let Some(current) = api.get_opt(&want.name_any()).await? {
        let owned = want
            .owner_references()
            .iter()
            .all(|o| current.owner_references().iter().any(|c| c.uid == o.uid));
        let spec = |s: &Service| {
            let spec = s.spec.clone().unwrap_or_default();
            (spec.ports, spec.selector, spec.cluster_ip)
        };
        let labels = want
            .labels()
            .iter()
            .all(|(k, v)| current.labels().get(k) == Some(v));
        let (ports, selector, cluster_ip) = spec(want);
        let (current_ports, current_selector, current_ip) = spec(&current);
        let same_ports = ports.as_ref().is_some_and(|ports| {
            ports.iter().all(|p| {
                current_ports
                    .iter()
                    .flatten()
                    .any(|c| c.name == p.name && c.port == p.port && c.target_port == p.target_port)
            })
        });
        if owned && labels && same_ports && selector == current_selector && cluster_ip == current_ip
        {
            return Ok(0);
        }
    }
    let manager = format!("{MANAGER}/{}", prometheus.name_any());
    let params = PatchParams::apply(&manager).force();
    api.patch(&want.name_any(), &params, &Patch::Apply(want))
        .await?;
    Ok(1)
}

/// Applies a StatefulSet unless it already holds this input hash. A change to a field the
/// API server does not let change (the claim templates, the service name) deletes it in the
/// foreground, its Pods first, as the operator does (a StatefulSet created over orphaned
/// Pods adopts them without rolling them, measured on the real node): the garbage collector
/// finishes the deletion, and the watch on StatefulSets brings the reconcile that creates
/// the new one. One being deleted is left alone until it is gone. Returns whether it wrote,
/// and the StatefulSet as it stands now (`None`: there is none).
async fn apply_statefulset(
    api: &Api<StatefulSet>,
    want: &StatefulSet,
) -> Result<(usize, Option<StatefulSet>), ApplyError> {
    let name = want.name_any();
    let hash = |s: &StatefulSet| s.annotations().get(INPUT_HASH).cloned();
    if let Some(current) = api.get_opt(&name).await? {
        if current.metadata.deletion_timestamp.is_some() {
            tracing::debug!(statefulset = %name, "being deleted; created again once gone");
            return Ok((0, Some(current)));
        }
        if hash(&current) == hash(want) {
            return Ok((0, Some(current)));
        }
    }
    let params = PatchParams::apply(MANAGER).force();
    match api.patch(&name, &params, &Patch::Apply(want)).await {
        Ok(written) => Ok((1, Some(written))),
        Err(kube::Error::Api(e)) if e.code == 422 && e.message.contains("Forbidden") => {
            tracing::info!(statefulset = %name, reason = %e.message, "a field that cannot change changed: deleting the StatefulSet and its Pods to create it again");
            let foreground = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Foreground),
                ..DeleteParams::default()
            };
            // Still there, being deleted (`Left`), or already gone.
            let deleting = api.delete(&name, &foreground).await?.left();
            Ok((1, deleting))
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes this Prometheus's StatefulSets of shards at or beyond `shards`, unless the shard
/// retention policy keeps them.
async fn prune_shards(
    api: &Api<StatefulSet>,
    prometheus: &Prometheus,
    shards: usize,
) -> Result<usize, ApplyError> {
    let retain = prometheus
        .spec
        .shard_retention_policy
        .as_ref()
        .and_then(|p| p.when_scaled.as_deref())
        == Some("Retain");
    let selector = format!(
        "operator.prometheus.io/name={},operator.prometheus.io/mode=server",
        prometheus.name_any()
    );
    let expected: Vec<String> = (0..shards as i32)
        .map(|shard| statefulset_name(prometheus, shard))
        .collect();
    let uid = prometheus.uid();
    let mut deleted = 0;
    for statefulset in api
        .list_metadata(&ListParams::default().labels(&selector))
        .await?
    {
        let name = statefulset.name_any();
        let ours = statefulset
            .owner_references()
            .iter()
            .any(|o| Some(&o.uid) == uid.as_ref());
        if expected.contains(&name) || !ours || statefulset.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if retain {
            tracing::info!(statefulset = %name, "surplus shard kept (shardRetentionPolicy: Retain)");
            continue;
        }
        api.delete(&name, &DeleteParams::default()).await?;
        tracing::info!(statefulset = %name, "surplus shard deleted");
        deleted += 1;
    }
    Ok(deleted)
}
