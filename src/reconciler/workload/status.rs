//! What runs, for a Prometheus's status: Pods per shard and the `Available` condition with
//! the operator's reasons (`StatusReporter.Process`). The counts are the StatefulSets' own
//! (their controller counts the Pods: ready for `minReadySeconds`, at the current revision).

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::Api;
use kube::{Client, ResourceExt};

use crate::reconciler::crd::{Prometheus, ShardStatus};

use super::{selector_labels, shards, statefulset_name};

/// The Pods of a Prometheus and whether enough of them are ready.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Pods of every shard.
    pub replicas: i32,
    /// Pods at their StatefulSet's current revision.
    pub updated_replicas: i32,
    /// Pods ready.
    pub available_replicas: i32,
    /// Pods not ready.
    pub unavailable_replicas: i32,
    /// Per shard.
    pub shard_statuses: Vec<ShardStatus>,
    /// `True`, `Degraded` or `False`.
    pub available: &'static str,
    /// The operator's reasons, joined by `And` (`NoPodReady`, `SomePodsNotReady`,
    /// `StatefulSetNotFound`); empty when available.
    pub reason: String,
    /// Per shard that is not available, what is missing.
    pub message: String,
    /// The Pods' label selector (the scale subresource's).
    pub selector: String,
}

/// Reads the StatefulSets of every shard of `prometheus` and sums them up.
pub async fn observe(client: &Client, prometheus: &Prometheus) -> kube::Result<Observed> {
    let api: Api<StatefulSet> =
        Api::namespaced(client.clone(), &prometheus.namespace().unwrap_or_default());
    let mut found = Vec::new();
    for shard in 0..shards(prometheus) {
        found.push(api.get_opt(&statefulset_name(prometheus, shard)).await?);
    }
    Ok(summarize(prometheus, &found))
}

/// The status of `prometheus` from its shards' StatefulSets (`None`: not found).
pub fn summarize(prometheus: &Prometheus, statefulsets: &[Option<StatefulSet>]) -> Observed {
    let expected = prometheus.spec.replicas.unwrap_or(1);
    let mut out = Observed::default();
    let mut statuses = Vec::new();
    let mut reasons = std::collections::BTreeSet::new();
    let mut messages = Vec::new();
    for (shard, statefulset) in statefulsets.iter().enumerate() {
        let name = statefulset_name(prometheus, shard as i32);
        let Some(statefulset) = statefulset else {
            statuses.push("False");
            reasons.insert("StatefulSetNotFound");
            messages.push(format!("shard {shard}: statefulset {name} not found"));
            out.shard_statuses.push(ShardStatus {
                shard_id: shard.to_string(),
                ..ShardStatus::default()
            });
            continue;
        };
        if statefulset.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let status = statefulset.status.clone().unwrap_or_default();
        let replicas = status.replicas;
        let updated = status.updated_replicas.unwrap_or(0);
        let ready = status.available_replicas.unwrap_or(0);
        out.replicas += replicas;
        out.updated_replicas += updated;
        out.available_replicas += ready;
        out.unavailable_replicas += replicas - ready;
        out.shard_statuses.push(ShardStatus {
            shard_id: shard.to_string(),
            replicas,
            updated_replicas: updated,
            available_replicas: ready,
            unavailable_replicas: replicas - ready,
        });
        if ready >= expected {
            statuses.push("True");
            continue;
        }
        let (status, reason) = if ready == 0 {
            ("False", "NoPodReady")
        } else {
            ("Degraded", "SomePodsNotReady")
        };
        statuses.push(status);
        reasons.insert(reason);
        messages.push(format!(
            "shard {shard}: {ready} of {expected} Pods ready ({name})"
        ));
    }
    out.available = if statuses.contains(&"False") {
        "False"
    } else if statuses.contains(&"Degraded") {
        "Degraded"
    } else {
        "True"
    };
    out.reason = reasons.into_iter().collect::<Vec<_>>().join("And");
    out.message = messages.join("\n");
    out.selector = selector_labels(prometheus, None)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statefulset(replicas: i32, ready: i32) -> Option<StatefulSet> {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x"},
            "status": {"replicas": replicas, "updatedReplicas": replicas, "availableReplicas": ready}
        }))
        .ok()
    }

    #[test]
    fn available_as_the_operator_says_it() {
        let mut p = Prometheus::new("k8s", Default::default());
        p.spec.replicas = Some(2);
        let all = summarize(&p, &[statefulset(2, 2), statefulset(2, 2)]);
        assert_eq!((all.available, all.reason.as_str()), ("True", ""));
        assert_eq!((all.replicas, all.available_replicas), (4, 4));
        let some = summarize(&p, &[statefulset(2, 1), statefulset(2, 2)]);
        assert_eq!(
            (some.available, some.reason.as_str()),
            ("Degraded", "SomePodsNotReady")
        );
        assert_eq!(some.unavailable_replicas, 1);
        assert_eq!(some.message, "shard 0: 1 of 2 Pods ready (prometheus-k8s)");
        let none = summarize(&p, &[statefulset(2, 0), None]);
        assert_eq!(none.available, "False");
        assert_eq!(none.reason, "NoPodReadyAndStatefulSetNotFound");
        assert_eq!(none.shard_statuses.len(), 2);
        assert!(none.selector.contains("operator.prometheus.io/name=k8s"));
        assert!(!none.selector.contains("shard"));
    }
}
