//! Where a Prometheus sends data and alerts: `remoteWrite`, `remoteRead` and `alerting`, with
//! the HTTP client settings they share.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    BasicAuth, OAuth2, ProxyConfig, RelabelConfig, SafeAuthorization, SecretKeySelector, TlsConfig,
};

/// Fields this reconciler does not render: refused, never dropped (see `validate`).
type Unrendered = BTreeMap<String, serde_json::Value>;

/// An `authorization` header that may also name a credentials file.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// The scheme (`Bearer` when unset).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The credentials, from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<SecretKeySelector>,
    /// The credentials, from a file of the Prometheus container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
    /// Fields this reconciler does not render.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: Unrendered,
}

/// One `remote_write` target.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RemoteWriteSpec {
    /// Where samples are sent.
    #[serde(default)]
    pub url: String,
    /// The queue's name in metrics and logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `V1.0` or `V2.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_version: Option<String>,
    /// Whether exemplars are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_exemplars: Option<bool>,
    /// Whether native histograms are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_native_histograms: Option<bool>,
    /// Request timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_timeout: Option<String>,
    /// Extra HTTP headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Relabelings applied to samples before they are sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write_relabel_configs: Vec<RelabelConfig>,
    /// OAuth 2.0 client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
    /// Basic authentication from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// A bearer token file (deprecated upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    /// The `Authorization` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// An inline bearer token (deprecated upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    /// TLS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// The proxy.
    #[serde(flatten)]
    pub proxy: ProxyConfig,
    /// Whether redirects are followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_redirects: Option<bool>,
    /// The sending queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_config: Option<QueueConfig>,
    /// Metric metadata sending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_config: Option<MetadataConfig>,
    /// Whether HTTP/2 is used.
    #[serde(
        default,
        rename = "enableHTTP2",
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_http2: Option<bool>,
    /// Spread requests over the host's DNS addresses.
    #[serde(
        default,
        rename = "roundRobinDNS",
        skip_serializing_if = "Option::is_none"
    )]
    pub round_robin_dns: Option<bool>,
    /// Fields this reconciler does not render (`sigv4`, `azureAd`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: Unrendered,
}

/// The remote-write queue.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueueConfig {
    /// Samples buffered per shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i64>,
    /// Fewest shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_shards: Option<i64>,
    /// Most shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_shards: Option<i64>,
    /// Samples per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_samples_per_send: Option<i64>,
    /// Longest wait for a full batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_send_deadline: Option<String>,
    /// Retries (Prometheus 2.11 and older).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i64>,
    /// Initial retry delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_backoff: Option<String>,
    /// Longest retry delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff: Option<String>,
    /// Retry on HTTP 429.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on_rate_limit: Option<bool>,
    /// Samples older than this are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_age_limit: Option<String>,
    /// Fields this reconciler does not render.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: Unrendered,
}

/// Metric metadata sending.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetadataConfig {
    /// Whether metadata is sent.
    #[serde(default)]
    pub send: bool,
    /// How often.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_interval: Option<String>,
    /// Metadata entries per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_samples_per_send: Option<i64>,
    /// Fields this reconciler does not render.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: Unrendered,
}

/// One `remote_read` source.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RemoteReadSpec {
    /// Where samples are read from.
    #[serde(default)]
    pub url: String,
    /// The source's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Equality matchers every query must have.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub required_matchers: BTreeMap<String, String>,
    /// Request timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_timeout: Option<String>,
    /// Extra HTTP headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Also read data local storage should have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_recent: Option<bool>,
    /// OAuth 2.0 client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
    /// Basic authentication from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// A bearer token file (deprecated upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    /// The `Authorization` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// An inline bearer token (deprecated upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    /// TLS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// The proxy.
    #[serde(flatten)]
    pub proxy: ProxyConfig,
    /// Whether redirects are followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_redirects: Option<bool>,
    /// Whether external labels are added as matchers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_external_labels: Option<bool>,
    /// Fields this reconciler does not render.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: Unrendered,
}

/// The Alertmanagers alerts go to.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlertingSpec {
    /// Alertmanager Services, found through their endpoints.
    #[serde(default)]
    pub alertmanagers: Vec<AlertmanagerEndpoints>,
    /// Fields this reconciler does not render.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: Unrendered,
}

/// One Alertmanager Service.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerEndpoints {
    /// The Service's namespace (the Prometheus's when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The Service's name.
    #[serde(default)]
    pub name: String,
    /// The port, by name or number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
    /// `http` or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// The API's path prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// TLS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// Basic authentication from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// A bearer token file (deprecated upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    /// The `Authorization` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<SafeAuthorization>,
    /// The proxy.
    #[serde(flatten)]
    pub proxy: ProxyConfig,
    /// `V1` or `V2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Push timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Whether HTTP/2 is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_http2: Option<bool>,
    /// Relabelings of the discovered Alertmanagers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabelings: Vec<RelabelConfig>,
    /// Relabelings of the alerts sent to this Alertmanager.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alert_relabelings: Vec<RelabelConfig>,
    /// Fields this reconciler does not render (`sigv4`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: Unrendered,
}
