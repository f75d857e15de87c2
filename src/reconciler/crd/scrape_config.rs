//! `ScrapeConfig` (`monitoring.coreos.com/v1alpha1`): a scrape job written almost as in
//! Prometheus's own config, with its targets from static lists or service discovery, often
//! outside the cluster.
//!
//! The discovery kinds rendered are static, file, HTTP, Kubernetes, DNS and Consul; any other
//! (`ec2SDConfigs`, `azureSDConfigs`, ...) stays in `unrendered` and refuses its ScrapeConfig
//! alone, naming the field.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::SecretKeySelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{HttpClient, RelabelConfig, ScrapeSettings};

/// One scrape job and where its targets come from.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1alpha1",
    kind = "ScrapeConfig",
    plural = "scrapeconfigs",
    shortname = "scfg",
    namespaced,
    status = "super::ConfigStatus"
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ScrapeConfigSpec {
    /// The `job` label of the samples (the job's name stays `scrapeConfig/<ns>/<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// Fixed lists of targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_configs: Vec<StaticConfig>,
    /// Targets from files in the Prometheus container.
    #[serde(
        default,
        rename = "fileSDConfigs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Targets from an HTTP endpoint.
    #[serde(
        default,
        rename = "httpSDConfigs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub http_sd_configs: Vec<HttpSdConfig>,
    /// Targets from a Kubernetes API server.
    #[serde(
        default,
        rename = "kubernetesSDConfigs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
    /// Targets from Consul.
    #[serde(
        default,
        rename = "consulSDConfigs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub consul_sd_configs: Vec<ConsulSdConfig>,
    /// Targets from DNS records.
    #[serde(
        default,
        rename = "dnsSDConfigs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dns_sd_configs: Vec<DnsSdConfig>,
    /// Relabelings of the targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabelings: Vec<RelabelConfig>,
    /// Relabelings of the samples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_relabelings: Vec<RelabelConfig>,
    /// The HTTP path of the scrape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_path: Option<String>,
    /// Scrape interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_interval: Option<String>,
    /// Scrape timeout; must not exceed the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<String>,
    /// Keep the target's timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honor_timestamps: Option<bool>,
    /// Track the staleness of explicit timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_timestamps_staleness: Option<bool>,
    /// Keep the target's labels on conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honor_labels: Option<bool>,
    /// URL parameters of the scrape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<BTreeMap<String, Vec<String>>>,
    /// `http` or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Ask for compressed responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_compression: Option<bool>,
    /// Validation of metric names (`UTF8` or `Legacy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_validation_scheme: Option<String>,
    /// Escaping of metric names (`AllowUTF8`, `Underscores`, `Dots`, `Values`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_escaping_scheme: Option<String>,
    /// Limits, protocols, histograms and the scrape class (no `attachMetadata`: set on a
    /// Kubernetes SD config instead; setting it here is refused).
    #[serde(flatten)]
    pub scrape: ScrapeSettings,
    /// The HTTP client of the scrape: credentials and TLS from Secrets and ConfigMaps only
    /// (no files, no `bearerTokenSecret`: refused), its proxy, `enableHTTP2`.
    #[serde(flatten)]
    pub client: HttpClient,
    /// Fields this reconciler does not render (other discovery kinds among them): refused,
    /// never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// A fixed list of targets (`static_configs`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StaticConfig {
    /// `host:port` of each target.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels of every target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// Targets read from files (`file_sd_configs`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FileSdConfig {
    /// File paths or globs in the Prometheus container.
    #[serde(default)]
    pub files: Vec<String>,
    /// How often the files are read again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<String>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// Targets from an HTTP endpoint (`http_sd_configs`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpSdConfig {
    /// The endpoint.
    #[serde(default)]
    pub url: String,
    /// How often it is asked again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<String>,
    /// Its HTTP client (no files, no `bearerTokenSecret`).
    #[serde(flatten)]
    pub client: HttpClient,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// Targets from a Kubernetes API server (`kubernetes_sd_configs`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesSdConfig {
    /// The API server (the in-cluster one when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server: Option<String>,
    /// `Pod`, `Service`, `Endpoints`, `EndpointSlice`, `Node` or `Ingress`.
    #[serde(default)]
    pub role: String,
    /// The namespaces to discover in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<NamespaceDiscovery>,
    /// Node metadata on the targets (`Pod`, `Endpoints`, `EndpointSlice` roles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_metadata: Option<SdAttachMetadata>,
    /// Label and field selectors, per role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<K8sSelector>,
    /// Its HTTP client (no files, no `bearerTokenSecret`).
    #[serde(flatten)]
    pub client: HttpClient,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// The namespaces of a Kubernetes SD config.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceDiscovery {
    /// Also the namespace Prometheus runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_namespace: Option<bool>,
    /// The namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// Node metadata of a Kubernetes SD config.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SdAttachMetadata {
    /// The node's labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<bool>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// A selector of a Kubernetes SD config.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct K8sSelector {
    /// The role it filters.
    #[serde(default)]
    pub role: String,
    /// A label selector (`a=b,c!=d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// A field selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// Targets from Consul's catalog (`consul_sd_configs`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConsulSdConfig {
    /// The Consul server (`host:port`).
    #[serde(default)]
    pub server: String,
    /// A prefix of the API's paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// The ACL token, from a Secret (written into the config, as the operator does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ref: Option<SecretKeySelector>,
    /// The datacenter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    /// The Consul namespace (Enterprise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The admin partition (Enterprise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// `http` or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Services to discover (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// Tags a service must have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The separator of the tags label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_separator: Option<String>,
    /// Node metadata a node must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_meta: Option<BTreeMap<String, String>>,
    /// A catalog filter expression (Prometheus 3.0+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// A health filter expression (Prometheus 3.11.2+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_filter: Option<String>,
    /// Allow stale reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_stale: Option<bool>,
    /// How often the catalog is read again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<String>,
    /// Its HTTP client (no files, no `bearerTokenSecret`).
    #[serde(flatten)]
    pub client: HttpClient,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// Targets from DNS records (`dns_sd_configs`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DnsSdConfig {
    /// The names to resolve.
    #[serde(default)]
    pub names: Vec<String>,
    /// How often they are resolved again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<String>,
    /// `A`, `AAAA`, `SRV` (the default), `MX` or `NS`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The port of the targets (required but for `SRV`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

impl ScrapeConfigSpec {
    /// Every HTTP client of the ScrapeConfig with its path: the scrape's own (`spec`), then
    /// each HTTP, Kubernetes and Consul SD config's, in that order (the order of
    /// `check::Accepted::clients`).
    pub fn clients(&self) -> impl Iterator<Item = (String, &HttpClient)> {
        let own = std::iter::once(("spec".to_string(), &self.client));
        let http = self.http_sd_configs.iter().enumerate();
        let kubernetes = self.kubernetes_sd_configs.iter().enumerate();
        let consul = self.consul_sd_configs.iter().enumerate();
        own.chain(http.map(|(i, c)| (format!("spec.httpSDConfigs[{i}]"), &c.client)))
            .chain(kubernetes.map(|(i, c)| (format!("spec.kubernetesSDConfigs[{i}]"), &c.client)))
            .chain(consul.map(|(i, c)| (format!("spec.consulSDConfigs[{i}]"), &c.client)))
    }
}
