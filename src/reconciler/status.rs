//! The `Reconciled` condition on a Prometheus's `/status` and, when the reconciler runs the
//! Pods, their counts and the `Available` condition, written by server-side apply, and only
//! when something other than a transition time changed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::crd::Prometheus;
use super::secret::MANAGER;
use super::workload::Observed;

/// The condition type the reconciler owns.
pub const CONDITION: &str = "Reconciled";

/// The condition of the Pods, when the reconciler runs them.
pub const AVAILABLE: &str = "Available";

/// The condition's reason while reconciles fail (the operator's).
pub const FAILED: &str = "ReconciliationFailed";

/// What the condition should say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `True` or `False`.
    pub ok: bool,
    /// PascalCase reason.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
}

/// The condition of type `type_` as `prometheus` holds it.
fn current<'a>(prometheus: &'a Prometheus, type_: &str) -> Option<&'a Condition> {
    prometheus
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
}

/// Whether the condition already says, for this generation, that reconciles fail.
pub fn failed(prometheus: &Prometheus) -> bool {
    current(prometheus, CONDITION).is_some_and(|c| {
        c.reason == FAILED && c.observed_generation == prometheus.metadata.generation
    })
}

/// Sets the condition, and with `workload` the Pods' counts and the `Available` condition,
/// unless the status already says the same for this generation.
pub async fn set(
    client: &Client,
    prometheus: &Prometheus,
    outcome: &Outcome,
    workload: Option<&Observed>,
) -> kube::Result<bool> {
    let generation = prometheus.metadata.generation;
    let status = if outcome.ok { "True" } else { "False" };
    let mut conditions = vec![condition(
        prometheus,
        CONDITION,
        status,
        outcome.reason,
        &outcome.message,
    )];
    if let Some(w) = workload {
        conditions.push(condition(
            prometheus,
            AVAILABLE,
            w.available,
            &w.reason,
            &w.message,
        ));
    }
    let mut desired = json!({ "conditions": conditions });
    if let Some(w) = workload {
        let fields = json!({
            "paused": prometheus.spec.paused.unwrap_or(false),
            "replicas": w.replicas,
            "updatedReplicas": w.updated_replicas,
            "availableReplicas": w.available_replicas,
            "unavailableReplicas": w.unavailable_replicas,
            "shardStatuses": w.shard_statuses,
            "shards": super::workload::shards(prometheus),
            "selector": w.selector,
        });
        desired
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
    }
    if same(prometheus, &desired, generation) {
        return Ok(false);
    }
    let patch = json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "status": desired,
    });
    let api: Api<Prometheus> =
        Api::namespaced(client.clone(), &prometheus.namespace().unwrap_or_default());
    api.patch_status(
        &prometheus.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(true)
}

/// A condition of type `type_`, keeping its transition time while its status stays.
fn condition(
    prometheus: &Prometheus,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> Condition {
    let transition = match current(prometheus, type_) {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(k8s_openapi::jiff::Timestamp::now()),
    };
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: prometheus.metadata.generation,
        last_transition_time: transition,
    }
}

/// Whether the stored status already holds `desired` (its conditions but their transition
/// times, which `condition` keeps), for this generation.
fn same(prometheus: &Prometheus, desired: &serde_json::Value, generation: Option<i64>) -> bool {
    let Some(current) = prometheus.status.as_ref() else {
        return false;
    };
    let Ok(current) = serde_json::to_value(current) else {
        return false;
    };
    let desired = desired.as_object().expect("an object");
    desired
        .iter()
        .all(|(field, want)| match (field.as_str(), current.get(field)) {
            ("conditions", Some(have)) => want.as_array().into_iter().flatten().all(|w| {
                have.as_array().into_iter().flatten().any(|h| {
                    ["type", "status", "reason", "message"]
                        .iter()
                        .all(|k| h.get(k) == w.get(k))
                        && h.get("observedGeneration").and_then(|g| g.as_i64()) == generation
                })
            }),
            (_, Some(have)) => have == want,
            (_, None) => false,
        })
}
