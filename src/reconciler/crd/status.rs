//! The status of a scrape object (ServiceMonitor, PodMonitor, Probe, ScrapeConfig): one
//! binding per Prometheus that selects it, each with an `Accepted` condition, in the shape of
//! prometheus-operator's `ConfigResourceStatus` (which the operator writes only behind its
//! `StatusForConfigurationResources` gate).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `status` of a scrape object.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigStatus {
    /// One entry per Prometheus selecting the object. A map keyed by the Prometheus, so each
    /// writer (one field manager per Prometheus) owns its own entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend(
        "x-kubernetes-list-type" = "map",
        "x-kubernetes-list-map-keys" = ["group", "resource", "name", "namespace"]
    ))]
    pub bindings: Vec<WorkloadBinding>,
}

/// A Prometheus that selects the object, and what it made of it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadBinding {
    /// `monitoring.coreos.com`.
    pub group: String,
    /// `prometheuses`.
    pub resource: String,
    /// The Prometheus's name.
    pub name: String,
    /// The Prometheus's namespace.
    pub namespace: String,
    /// The `Accepted` condition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<ConfigCondition>,
}

/// A condition of a binding.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigCondition {
    /// `Accepted`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True` or `False`.
    pub status: String,
    /// `InvalidConfiguration` when refused (none when accepted, as the operator writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The object's generation the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the status last changed (RFC 3339).
    #[serde(default)]
    pub last_transition_time: String,
}
