//! `Probe` (`monitoring.coreos.com/v1`): URLs or Ingresses checked through a prober such as
//! the blackbox exporter.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{HttpClient, NamespaceSelector, ProxyConfig, RelabelConfig, ScrapeSettings};

/// Targets to probe, and the prober that probes them.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "Probe",
    plural = "probes",
    shortname = "prb",
    namespaced,
    status = "super::ConfigStatus"
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ProbeSpec {
    /// The `job` label of the samples (the job's name stays `probe/<ns>/<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// The prober: where it is, and the proxy to reach it.
    #[serde(default)]
    pub prober: ProberSpec,
    /// The prober's module (the `module` parameter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// What to probe: static targets, or Ingresses (static ones win when both are set).
    #[serde(default)]
    pub targets: ProbeTargets,
    /// Scrape interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Scrape timeout; must not exceed the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<String>,
    /// Relabelings applied to samples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_relabelings: Vec<RelabelConfig>,
    /// More URL parameters of the probe (`module` set above wins over one named here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<ProbeParam>,
    /// Limits, protocols, histograms and the scrape class (no `bodySizeLimit` or
    /// `attachMetadata`: a Probe has neither, and setting one is refused).
    #[serde(flatten)]
    pub scrape: ScrapeSettings,
    /// The HTTP client of the scrape of the prober: credentials and TLS, from Secrets and
    /// ConfigMaps only (its proxy is the prober's).
    #[serde(flatten)]
    pub client: HttpClient,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// The prober.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProberSpec {
    /// `host` or `host:port` of the prober.
    #[serde(default)]
    pub url: String,
    /// `http` or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// The prober's path (`/probe` when unset: the API server fills it in, as with the
    /// upstream CRD, and so does the offline reader).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "/probe"))]
    pub path: Option<String>,
    /// The proxy to reach the prober.
    #[serde(flatten)]
    pub proxy: ProxyConfig,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// What a Probe probes.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProbeTargets {
    /// A fixed list of targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_config: Option<ProbeStaticConfig>,
    /// The hosts and paths of selected Ingresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<ProbeIngress>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// Static targets.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProbeStaticConfig {
    /// The targets (URLs or hosts, as the prober takes them).
    #[serde(default, rename = "static", skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Labels of every target (`namespace` is added unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Relabelings of the targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabeling_configs: Vec<RelabelConfig>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// Ingresses whose hosts and paths are probed.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProbeIngress {
    /// Which Ingresses (by label).
    #[serde(default)]
    pub selector: LabelSelector,
    /// Where they are: unset = the Probe's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<NamespaceSelector>,
    /// Relabelings of the targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabeling_configs: Vec<RelabelConfig>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// A URL parameter of the probe.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProbeParam {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}
