//! `PodMonitor` (`monitoring.coreos.com/v1`): Pods to scrape, found by label, with no Service
//! in between.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{HttpClient, NamespaceSelector, RelabelConfig, ScrapeSettings};

/// A set of Pods to scrape.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "PodMonitor",
    plural = "podmonitors",
    shortname = "pmon",
    namespaced,
    status = "super::ConfigStatus"
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct PodMonitorSpec {
    /// Which Pods (by label) to scrape.
    #[serde(default)]
    pub selector: LabelSelector,
    /// How Pods are selected: `RelabelConfig` (keep rules, default) or `RoleSelector`
    /// (Kubernetes SD `selectors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector_mechanism: Option<String>,
    /// Where the Pods are: unset = the PodMonitor's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<NamespaceSelector>,
    /// One scrape job per endpoint.
    #[serde(default)]
    pub pod_metrics_endpoints: Vec<PodMetricsEndpoint>,
    /// Pod label whose value becomes the `job` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_label: Option<String>,
    /// Pod labels copied onto the targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_target_labels: Vec<String>,
    /// Limits, protocols, histograms and the scrape class.
    #[serde(flatten)]
    pub scrape: ScrapeSettings,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// One scrape endpoint of a PodMonitor: a container port of the selected Pods.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct PodMetricsEndpoint {
    /// Container port name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// Container port number (used when `port` is unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_number: Option<i32>,
    /// Container port by name or number (deprecated upstream; used when neither is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    /// HTTP path to scrape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `http` or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// URL parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<BTreeMap<String, Vec<String>>>,
    /// Scrape interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Scrape timeout; must not exceed the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<String>,
    /// Keep the target's labels on conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honor_labels: Option<bool>,
    /// Keep the target's timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honor_timestamps: Option<bool>,
    /// Track the staleness of samples with explicit timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_timestamps_staleness: Option<bool>,
    /// Relabelings applied to targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabelings: Vec<RelabelConfig>,
    /// Relabelings applied to samples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_relabelings: Vec<RelabelConfig>,
    /// Drop targets of pods that are not running (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_running: Option<bool>,
    /// The HTTP client: credentials, TLS and proxy (from Secrets and ConfigMaps only).
    #[serde(flatten)]
    pub client: HttpClient,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}
