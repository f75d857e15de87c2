//! The `Reconciled` condition on a Prometheus's `/status`, written by server-side apply, and
//! only when its status, reason, message or observed generation changed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::crd::Prometheus;
use super::secret::MANAGER;

/// The condition type the reconciler owns.
pub const CONDITION: &str = "Reconciled";

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

/// The reconciler's condition as `prometheus` holds it.
fn current(prometheus: &Prometheus) -> Option<&Condition> {
    prometheus
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == CONDITION))
}

/// Whether the condition already says, for this generation, that reconciles fail.
pub fn failed(prometheus: &Prometheus) -> bool {
    current(prometheus).is_some_and(|c| {
        c.reason == FAILED && c.observed_generation == prometheus.metadata.generation
    })
}

/// Sets the condition unless it already says the same for this generation.
pub async fn set(
    client: &Client,
    prometheus: &Prometheus,
    outcome: &Outcome,
) -> kube::Result<bool> {
    let generation = prometheus.metadata.generation;
    let status = if outcome.ok { "True" } else { "False" };
    let current = current(prometheus);
    if let Some(c) = current
        && c.status == status
        && c.reason == outcome.reason
        && c.message == outcome.message
        && c.observed_generation == generation
    {
        return Ok(false);
    }
    let transition = match current {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(k8s_openapi::jiff::Timestamp::now()),
    };
    let condition = Condition {
        type_: CONDITION.into(),
        status: status.into(),
        reason: outcome.reason.into(),
        message: outcome.message.clone(),
        observed_generation: generation,
        last_transition_time: transition,
    };
    let patch = json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "status": { "conditions": [condition] },
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
