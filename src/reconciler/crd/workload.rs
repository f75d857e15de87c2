//! The parts of a Prometheus spec that shape its Pods rather than its config file, typed as
//! prometheus-operator v0.94 declares them: Kubernetes core types where the operator uses
//! them, and its own small types (storage, web, query, rules, arguments) here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EmptyDirVolumeSource, EphemeralVolumeSource, PersistentVolumeClaimSpec,
    PersistentVolumeClaimStatus, TopologySpreadConstraint as CoreTopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the TSDB lives (`spec.storage`): an emptyDir when unset.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Deprecated: mount the volume's root instead of its `prometheus-db` sub-path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_mount_sub_path: Option<bool>,
    /// An emptyDir volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDirVolumeSource>,
    /// A generic ephemeral volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<EphemeralVolumeSource>,
    /// A claim per Pod (the StatefulSet's `volumeClaimTemplates`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_claim_template: Option<EmbeddedPersistentVolumeClaim>,
}

/// A PersistentVolumeClaim template.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedPersistentVolumeClaim {
    /// Ignored (the operator clears it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Ignored (the operator clears it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The claim's name, labels and annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<EmbeddedObjectMetadata>,
    /// The claim's spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<PersistentVolumeClaimSpec>,
    /// Passed through as the operator passes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PersistentVolumeClaimStatus>,
}

/// Name, labels and annotations of an embedded object (`podMetadata`, claim templates).
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedObjectMetadata {
    /// The name (claim templates; ignored for Pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `spec.web`: the server's own HTTP settings.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebSpec {
    /// `--web.page-title` (2.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_title: Option<String>,
    /// `--web.max-connections`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<i32>,
    /// The web config file's `http_server_config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<WebHttpConfig>,
    /// Fields this reconciler does not build yet (`tlsConfig`): refused, never dropped.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// `web.httpConfig`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebHttpConfig {
    /// Whether HTTP/2 is offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2: Option<bool>,
    /// Response headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<WebHttpHeaders>,
}

/// `web.httpConfig.headers`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebHttpHeaders {
    /// `Content-Security-Policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_security_policy: Option<String>,
    /// `Strict-Transport-Security`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_transport_security: Option<String>,
    /// `X-Content-Type-Options` (`NoSniff`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_content_type_options: Option<String>,
    /// `X-Frame-Options` (`Deny` or `SameOrigin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_frame_options: Option<String>,
    /// `X-XSS-Protection`.
    #[serde(
        default,
        rename = "xXSSProtection",
        skip_serializing_if = "Option::is_none"
    )]
    pub x_xss_protection: Option<String>,
}

/// `spec.query`: the query engine's flags.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QuerySpec {
    /// `--query.lookback-delta`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback_delta: Option<String>,
    /// `--query.max-concurrency` (when above 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<i32>,
    /// `--query.max-samples` (when above 0; 2.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_samples: Option<i32>,
    /// `--query.timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// `spec.rules`: the rule manager's flags.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RulesSpec {
    /// Alerting rules' flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<RulesAlert>,
}

/// `spec.rules.alert` (each from 2.4).
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RulesAlert {
    /// `--rules.alert.for-outage-tolerance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_outage_tolerance: Option<String>,
    /// `--rules.alert.for-grace-period`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_grace_period: Option<String>,
    /// `--rules.alert.resend-delay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend_delay: Option<String>,
}

/// A command-line argument: `--name=value`, or `--name` without a value.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    /// The flag's name, without dashes.
    pub name: String,
    /// Its value, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A Pod topology spread constraint, with the operator's `additionalLabelSelectors`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TopologySpreadConstraint {
    /// The Kubernetes constraint.
    #[serde(flatten)]
    pub core: CoreTopologySpreadConstraint,
    /// `OnResource` (the Prometheus's selector labels but the shard) or `OnShard` (all of
    /// them) are added to the constraint's label selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_label_selectors: Option<String>,
}

/// `spec.updateStrategy`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatefulSetUpdateStrategy {
    /// `RollingUpdate` or `OnDelete`.
    #[serde(rename = "type")]
    pub type_: String,
    /// For `RollingUpdate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_update: Option<RollingUpdate>,
}

/// `spec.updateStrategy.rollingUpdate`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RollingUpdate {
    /// Pods that may be unavailable during the update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

/// `spec.shardRetentionPolicy`: what happens to the StatefulSets of shards scaled away.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ShardRetentionPolicy {
    /// `Delete` (the default) or `Retain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_scaled: Option<String>,
    /// How long a retained shard is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain: Option<RetainConfig>,
}

/// `spec.shardRetentionPolicy.retain`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetainConfig {
    /// How long the StatefulSet of a shard scaled away is kept.
    pub retention_period: String,
}
