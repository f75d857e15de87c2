//! The subset of prometheus-operator's `monitoring.coreos.com/v1` API the reconciler renders.
//!
//! Fields outside the subset are kept when reading, in each struct's `unrendered` map, so
//! that they are refused loudly rather than dropped silently (see `validate`): a
//! ServiceMonitor with a misspelled `bearerTokenSecrets` is left out with a Warning Event,
//! never scraped without its credentials. The CRDs generated from these types keep unknown fields
//! (`x-kubernetes-preserve-unknown-fields`) so that such objects are accepted and stored whole.

mod outputs;
mod pod_monitor;
mod probe;
mod rules;
mod scrape_config;
mod status;
mod workload;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSetPersistentVolumeClaimRetentionPolicy;
use k8s_openapi::api::core::v1::{
    Affinity, Container, HostAlias, LocalObjectReference, PodDNSConfig, PodSecurityContext,
    ResourceRequirements, Toleration, Volume, VolumeMount,
};
pub use k8s_openapi::api::core::v1::{ConfigMapKeySelector, SecretKeySelector};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use outputs::{
    AlertingSpec, AlertmanagerEndpoints, Authorization, MetadataConfig, QueueConfig,
    RemoteReadSpec, RemoteWriteSpec,
};
pub use pod_monitor::{PodMetricsEndpoint, PodMonitor, PodMonitorSpec};
pub use probe::{
    Probe, ProbeIngress, ProbeParam, ProbeSpec, ProbeStaticConfig, ProbeTargets, ProberSpec,
};
pub use rules::{PrometheusRule, PrometheusRuleSpec, Rule, RuleGroup};
pub use scrape_config::{
    ConsulSdConfig, DnsSdConfig, FileSdConfig, HttpSdConfig, K8sSelector, KubernetesSdConfig,
    NamespaceDiscovery, ScrapeConfig, ScrapeConfigSpec, SdAttachMetadata, StaticConfig,
};
pub use status::{ConfigCondition, ConfigStatus, WorkloadBinding};
pub use workload::{
    Argument, EmbeddedObjectMetadata, EmbeddedPersistentVolumeClaim, QuerySpec, RollingUpdate,
    RulesAlert, RulesSpec, ShardRetentionPolicy, StatefulSetUpdateStrategy, StorageSpec,
    TopologySpreadConstraint, WebHttpConfig, WebHttpHeaders, WebSpec,
};

/// A Prometheus server whose configuration the reconciler generates.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "Prometheus",
    plural = "prometheuses",
    shortname = "prom",
    namespaced,
    status = "PrometheusStatus",
    printcolumn = r#"{"name": "Version", "type": "string", "description": "The version of Prometheus", "jsonPath": ".spec.version"}"#,
    printcolumn = r#"{"name": "Desired", "type": "integer", "description": "The number of desired replicas", "jsonPath": ".spec.replicas"}"#,
    printcolumn = r#"{"name": "Ready", "type": "integer", "description": "The number of ready replicas", "jsonPath": ".status.availableReplicas"}"#,
    printcolumn = r#"{"name": "Reconciled", "type": "string", "jsonPath": ".status.conditions[?(@.type == 'Reconciled')].status"}"#,
    printcolumn = r#"{"name": "Available", "type": "string", "jsonPath": ".status.conditions[?(@.type == 'Available')].status"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name": "Paused", "type": "boolean", "description": "Whether the resource reconciliation is paused or not", "jsonPath": ".status.paused", "priority": 1}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct PrometheusSpec {
    /// ServiceMonitors to select: unset selects none, `{}` selects all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_monitor_selector: Option<LabelSelector>,
    /// Namespaces to take ServiceMonitors from: unset = the Prometheus's own, `{}` = all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_monitor_namespace_selector: Option<LabelSelector>,
    /// PodMonitors to select: unset selects none, `{}` selects all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_monitor_selector: Option<LabelSelector>,
    /// Namespaces to take PodMonitors from: unset = the Prometheus's own, `{}` = all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_monitor_namespace_selector: Option<LabelSelector>,
    /// Probes to select: unset selects none, `{}` selects all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_selector: Option<LabelSelector>,
    /// Namespaces to take Probes from: unset = the Prometheus's own, `{}` = all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_namespace_selector: Option<LabelSelector>,
    /// ScrapeConfigs to select: unset selects none, `{}` selects all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_config_selector: Option<LabelSelector>,
    /// Namespaces to take ScrapeConfigs from: unset = the Prometheus's own, `{}` = all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_config_namespace_selector: Option<LabelSelector>,
    /// Default scrape interval (Prometheus duration), 30s when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_interval: Option<String>,
    /// Default scrape timeout; must not exceed the scrape interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<String>,
    /// Rule evaluation interval, 30s when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation_interval: Option<String>,
    /// Extra external labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_labels: Option<BTreeMap<String, String>>,
    /// Number of shards (hashmod modulus), 1 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<i32>,
    /// How long to keep data (`storage.tsdb.retention.time`; 24h when no retention is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
    /// How much data to keep (`storage.tsdb.retention.size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_size: Option<String>,
    /// The Prometheus version; below 3.11 the retention is not in the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `honor_labels` is always false (targets cannot override labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_honor_labels: Option<bool>,
    /// `honor_timestamps` is always false where it is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_honor_timestamps: Option<bool>,
    /// ServiceMonitors' `namespaceSelector`s are ignored: each discovers in its own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_namespace_selectors: Option<bool>,
    /// A label set to each target's ServiceMonitor namespace, last, on targets and samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_namespace_label: Option<String>,
    /// Pod labels copied onto the targets of every ServiceMonitor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_target_labels: Vec<String>,
    /// Named sets of scrape settings that ServiceMonitors opt into (`scrapeClass`); the one
    /// marked `default` applies to those that name none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scrape_classes: Vec<ScrapeClass>,
    /// Objects `enforcedNamespaceLabel` does not apply to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_from_enforcement: Vec<ObjectReference>,
    /// PrometheusRules to load: unset loads none (and writes no `rule_files`), `{}` all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_selector: Option<LabelSelector>,
    /// Namespaces to take PrometheusRules from: unset = the Prometheus's own, `{}` = all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_namespace_selector: Option<LabelSelector>,
    /// Deprecated form of `excludedFromEnforcement` for PrometheusRules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prometheus_rules_excluded_from_enforce: Vec<PrometheusRuleExcludeConfig>,
    /// Whether ServiceMonitors may name files of the Prometheus container (`deny: true`
    /// rejects those with `bearerTokenFile` or TLS files).
    #[serde(
        default,
        rename = "arbitraryFSAccessThroughSMs",
        skip_serializing_if = "Option::is_none"
    )]
    pub arbitrary_fs_access_through_sms: Option<ArbitraryFsAccess>,
    /// Default discovery role of ServiceMonitors: `Endpoints` (default) or `EndpointSlice`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_discovery_role: Option<String>,
    /// Name of the `prometheus` external label (`""` leaves it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_external_label_name: Option<String>,
    /// Name of the `prometheus_replica` external label (`""` leaves it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_external_label_name: Option<String>,
    /// Global `sample_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_limit: Option<u64>,
    /// Global `target_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_limit: Option<u64>,
    /// Global `label_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_limit: Option<u64>,
    /// Global `label_name_length_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_name_length_limit: Option<u64>,
    /// Global `label_value_length_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_value_length_limit: Option<u64>,
    /// Global `keep_dropped_targets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_dropped_targets: Option<u64>,
    /// Upper bound of every job's `sample_limit` (and the global default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_sample_limit: Option<u64>,
    /// Upper bound of every job's `target_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_target_limit: Option<u64>,
    /// Upper bound of every job's `label_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_label_limit: Option<u64>,
    /// Upper bound of every job's `label_name_length_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_label_name_length_limit: Option<u64>,
    /// Upper bound of every job's `label_value_length_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_label_value_length_limit: Option<u64>,
    /// Upper bound of every job's `keep_dropped_targets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_keep_dropped_targets: Option<u64>,
    /// Global `body_size_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_size_limit: Option<String>,
    /// Upper bound of every job's `body_size_limit` (and the global default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_body_size_limit: Option<String>,
    /// Global `scrape_protocols`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scrape_protocols: Vec<String>,
    /// `global.rule_query_offset` (Prometheus 2.53).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_query_offset: Option<String>,
    /// `global.query_log_file`; a bare file name is under `/var/log/prometheus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_log_file: Option<String>,
    /// `global.scrape_failure_log_file` (2.55); a bare file name is under `/var/log/prometheus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_failure_log_file: Option<String>,
    /// `global.metric_name_validation_scheme` (3.0): `UTF8` or `Legacy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_validation_scheme: Option<String>,
    /// `global.metric_name_escaping_scheme` (3.4): `AllowUTF8`, `Underscores`, `Dots`, `Values`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_escaping_scheme: Option<String>,
    /// `global.convert_classic_histograms_to_nhcb` (3.4).
    #[serde(
        default,
        rename = "convertClassicHistogramsToNHCB",
        skip_serializing_if = "Option::is_none"
    )]
    pub convert_classic_histograms_to_nhcb: Option<bool>,
    /// `global.always_scrape_classic_histograms` (3.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_classic_histograms: Option<bool>,
    /// `global.scrape_native_histograms` (3.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_native_histograms: Option<bool>,
    /// The `runtime` section (2.53).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeConfig>,
    /// `storage.exemplars` (2.29).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exemplars: Option<Exemplars>,
    /// `storage.tsdb` settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsdb: Option<TsdbSpec>,
    /// `storage.tsdb.retention.percentage` (3.11), a quantity from 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-int-or-string" = true))]
    pub retention_percentage: Option<serde_json::Value>,
    /// Where samples are sent (`remote_write`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_write: Vec<RemoteWriteSpec>,
    /// Where samples are read from (`remote_read`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_read: Vec<RemoteReadSpec>,
    /// The Alertmanagers alerts go to (`alerting.alertmanagers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerting: Option<AlertingSpec>,
    /// Scrape jobs from a Secret key (a YAML list), appended after the generated ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_scrape_configs: Option<SecretKeySelector>,
    /// Alert relabelings from a Secret key (a YAML list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_alert_relabel_configs: Option<SecretKeySelector>,
    /// Alertmanager configs from a Secret key (a YAML list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_alert_manager_configs: Option<SecretKeySelector>,
    /// Prometheus feature flags; `st-storage` cannot go with `Xor` float chunks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enable_features: Vec<String>,
    /// Leave everything generated for this Prometheus as it is (the config Secret, TLS assets
    /// and rule ConfigMaps): nothing is written while it is true, as with the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Pods per shard (1 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// The Prometheus image, used as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Pull policy of every generated container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// The Pod's `imagePullSecrets`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Deprecated: the image without its tag (`quay.io/prometheus/prometheus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<String>,
    /// Deprecated: the image tag, instead of the version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Deprecated: the image digest, preferred over the tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    /// The `prometheus` container's resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// The Pod's node selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// The Pod's tolerations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// The Pod's affinity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// The Pod's topology spread constraints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// The Pod's security context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// The Pod's service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Whether the token is mounted (true when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,
    /// Labels and annotations of the Pods (the selector labels win).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_metadata: Option<EmbeddedObjectMetadata>,
    /// Secrets mounted under `/etc/prometheus/secrets/<name>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// ConfigMaps mounted under `/etc/prometheus/configmaps/<name>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_maps: Vec<String>,
    /// More volumes of the Pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// More mounts of the `prometheus` container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Containers merged by name into the generated ones (a strategic merge), or added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<Container>,
    /// Init containers merged by name into the generated one, or added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    /// Listen on 127.0.0.1 only (probes by `exec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_local: Option<bool>,
    /// The server's own HTTP settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebSpec>,
    /// `--web.external-url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// `--web.route-prefix` (`/` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_prefix: Option<String>,
    /// `--web.enable-admin-api`.
    #[serde(
        default,
        rename = "enableAdminAPI",
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_admin_api: Option<bool>,
    /// `--log.level` of the server and its reloader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// `--log.format` of the server and its reloader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
    /// `--[no-]storage.tsdb.wal-compression` (2.11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_compression: Option<bool>,
    /// The StatefulSet's `minReadySeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    /// The Pod's priority class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// The Pod's scheduler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_name: Option<String>,
    /// The Pod's `/etc/hosts` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_aliases: Vec<HostAlias>,
    /// Host networking (DNS policy `ClusterFirstWithHostNet`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
    /// The Pod's DNS policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_policy: Option<String>,
    /// The Pod's DNS config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<PodDNSConfig>,
    /// More server flags; one the operator sets is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_args: Vec<Argument>,
    /// The query engine's flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<QuerySpec>,
    /// The rule manager's flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<RulesSpec>,
    /// The StatefulSet's claim retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim_retention_policy:
        Option<StatefulSetPersistentVolumeClaimRetentionPolicy>,
    /// `HTTP` (`/-/reload`, the default) or `ProcessSignal` (SIGHUP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload_strategy: Option<String>,
    /// Name of the web port (`web` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_name: Option<String>,
    /// Where the TSDB lives (an emptyDir when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// The Pod's grace period (600 s when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    /// The Pod's `enableServiceLinks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_service_links: Option<bool>,
    /// The Pod's `hostUsers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_users: Option<bool>,
    /// Longest start-up the startup probe allows (15 minutes when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_startup_duration_seconds: Option<i32>,
    /// `Parallel` (the default) or `OrderedReady`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_management_policy: Option<String>,
    /// The StatefulSet's update strategy (`RollingUpdate` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<StatefulSetUpdateStrategy>,
    /// A governing Service of the user's, instead of `prometheus-operated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// `--web.enable-remote-write-receiver` (2.33).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_remote_write_receiver: Option<bool>,
    /// Messages the receiver accepts (`V1.0`, `V2.0`; 2.54).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_write_receiver_message_versions: Vec<String>,
    /// `--web.enable-otlp-receiver`.
    #[serde(
        default,
        rename = "enableOTLPReceiver",
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_otlp_receiver: Option<bool>,
    /// Disable local compaction (min and max block duration 2h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_compaction: Option<bool>,
    /// Deprecated: `--storage.tsdb.allow-overlapping-blocks` (2.11 to 2.39).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_overlapping_blocks: Option<bool>,
    /// What happens to the StatefulSets of shards scaled away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_retention_policy: Option<ShardRetentionPolicy>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// The `runtime` section of the config.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfig {
    /// The Go garbage collection target percentage.
    #[serde(default, rename = "goGC", skip_serializing_if = "Option::is_none")]
    pub go_gc: Option<i32>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// Exemplar storage.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Exemplars {
    /// Most exemplars kept in memory (`storage.exemplars.max_exemplars`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<i64>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// TSDB settings that live in the config file.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TsdbSpec {
    /// `out_of_order_time_window` (2.39).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_order_time_window: Option<String>,
    /// `stale_series_compaction_threshold` (3.10), a quantity from 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-int-or-string" = true))]
    pub stale_series_compaction_threshold: Option<serde_json::Value>,
    /// `chunk_encoding` (3.13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_encoding: Option<ChunkEncoding>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// Chunk encodings by chunk type.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChunkEncoding {
    /// `Xor` or `Xor2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floats: Option<String>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// What the reconciler reports on a Prometheus.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct PrometheusStatus {
    /// `Reconciled`, and `Available` when the reconciler runs the Pods (and upstream's
    /// conditions, preserved).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Whether `spec.paused` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Pods of every shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Pods at the StatefulSets' current revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_replicas: Option<i32>,
    /// Pods ready (for `minReadySeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    /// Pods not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_replicas: Option<i32>,
    /// The same, per shard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["shardID"]))]
    pub shard_statuses: Vec<ShardStatus>,
    /// The number of shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<i32>,
    /// The Pods' label selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

/// The Pods of one shard.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ShardStatus {
    /// The shard's number.
    #[serde(rename = "shardID")]
    pub shard_id: String,
    /// Its Pods.
    pub replicas: i32,
    /// Its Pods at the current revision.
    pub updated_replicas: i32,
    /// Its Pods ready.
    pub available_replicas: i32,
    /// Its Pods not ready.
    pub unavailable_replicas: i32,
}

/// A set of Services to scrape.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "ServiceMonitor",
    plural = "servicemonitors",
    shortname = "smon",
    namespaced,
    status = "ConfigStatus"
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ServiceMonitorSpec {
    /// Which Services (by label) to scrape.
    #[serde(default)]
    pub selector: LabelSelector,
    /// Where the Services are: unset = the ServiceMonitor's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<NamespaceSelector>,
    /// One scrape job per endpoint.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// Service label whose value becomes the `job` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_label: Option<String>,
    /// Service labels copied onto the targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_labels: Vec<String>,
    /// Pod labels copied onto the targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_target_labels: Vec<String>,
    /// How Services are selected: `RelabelConfig` (keep rules, default) or `RoleSelector`
    /// (Kubernetes SD `selectors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector_mechanism: Option<String>,
    /// Discovery role: `Endpoints` or `EndpointSlice` (default: the Prometheus's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_discovery_role: Option<String>,
    /// Limits, protocols, histograms and the scrape class.
    #[serde(flatten)]
    pub scrape: ScrapeSettings,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// Namespaces where a ServiceMonitor's Services are discovered.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// All namespaces.
    #[serde(default)]
    pub any: bool,
    /// These namespaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_names: Vec<String>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// One scrape endpoint of a ServiceMonitor.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct Endpoint {
    /// Service port name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// Pod container port, by name or number (used when `port` is unset).
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
    /// Relabelings applied to targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabelings: Vec<RelabelConfig>,
    /// Relabelings applied to samples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_relabelings: Vec<RelabelConfig>,
    /// Drop targets of pods that are not running (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_running: Option<bool>,
    /// Track the staleness of samples with explicit timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_timestamps_staleness: Option<bool>,
    /// The HTTP client: credentials, TLS and proxy.
    #[serde(flatten)]
    pub client: HttpClient,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// A Prometheus relabeling rule, with the operator's camelCase field names.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RelabelConfig {
    /// Labels whose values are concatenated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    /// Separator of the concatenation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    /// Label written by replace-like actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_label: Option<String>,
    /// Regular expression (RE2), anchored by Prometheus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Modulus of `hashmod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modulus: Option<u64>,
    /// Replacement of replace-like actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    /// Action, case-insensitive (`replace` when unset: the API server fills it in, as with the
    /// upstream CRDs, and so does the offline reader).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "replace"))]
    pub action: Option<String>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// Basic auth credentials, each from a key of a Secret.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// The user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<SecretKeySelector>,
    /// The password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretKeySelector>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// The `Authorization` header of scrapes.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SafeAuthorization {
    /// The scheme (`Bearer` when unset; `Basic` is refused: use `basicAuth`).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The credentials, from a key of a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<SecretKeySelector>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// A scrape class of a Prometheus: settings its ServiceMonitors inherit.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScrapeClass {
    /// The name ServiceMonitors use in `scrapeClass`.
    #[serde(default)]
    pub name: String,
    /// Applies to ServiceMonitors that name no class (one class at most).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    /// Fallback scrape protocol when the ServiceMonitor sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_scrape_protocol: Option<String>,
    /// TLS settings: the whole of it when an endpoint has none, else its files fill in what
    /// the endpoint leaves unset (files and the plain fields only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// The `Authorization` header when an endpoint has none (a credentials file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<ClassAuthorization>,
    /// Relabelings applied before each endpoint's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabelings: Vec<RelabelConfig>,
    /// Metric relabelings applied before each endpoint's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_relabelings: Vec<RelabelConfig>,
    /// Node metadata when the ServiceMonitor sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_metadata: Option<AttachMetadata>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// A scrape class's `Authorization` header, from a file of the Prometheus container.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClassAuthorization {
    /// The scheme (`Bearer` when unset).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The file holding the credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
    /// Fields this reconciler does not render (`credentials` from a Secret): refused.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// An object, or all objects of a resource in a namespace (`name` unset).
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    /// API group (`monitoring.coreos.com` when empty).
    #[serde(default)]
    pub group: String,
    /// Resource (`servicemonitors`, ...).
    #[serde(default)]
    pub resource: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
    /// Name; unset means every object of the resource in the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A PrometheusRule that `enforcedNamespaceLabel` does not apply to (deprecated form).
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusRuleExcludeConfig {
    /// Namespace of the PrometheusRule.
    #[serde(default)]
    pub rule_namespace: String,
    /// Name of the PrometheusRule.
    #[serde(default)]
    pub rule_name: String,
}

/// `arbitraryFSAccessThroughSMs`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArbitraryFsAccess {
    /// Reject ServiceMonitors that name files of the Prometheus container.
    #[serde(default)]
    pub deny: bool,
}

/// Metadata attached to discovered targets.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AttachMetadata {
    /// The node's labels (`__meta_kubernetes_node_*`); needs `get`/`list`/`watch` on nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<bool>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// A key of a Secret or of a ConfigMap (exactly one of the two).
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretOrConfigMap {
    /// A key of a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretKeySelector>,
    /// A key of a ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapKeySelector>,
}

impl SecretOrConfigMap {
    /// Whether neither is set.
    pub fn is_empty(&self) -> bool {
        self.secret.is_none() && self.config_map.is_none()
    }
}

/// OAuth 2.0 client credentials (`oauth2` in the Prometheus config).
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2 {
    /// The client id, from a Secret or a ConfigMap.
    #[serde(default)]
    pub client_id: SecretOrConfigMap,
    /// The client secret, from a Secret.
    #[serde(default)]
    pub client_secret: SecretKeySelector,
    /// The token endpoint.
    #[serde(default)]
    pub token_url: String,
    /// Scopes requested.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Extra parameters of the token request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_params: Option<BTreeMap<String, String>>,
    /// Proxy for token requests.
    #[serde(flatten)]
    pub proxy: ProxyConfig,
    /// TLS settings of token requests (from Secrets and ConfigMaps only: no files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// TLS settings of scrapes.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TlsConfig {
    /// CA bundle from a Secret or a ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<SecretOrConfigMap>,
    /// Client certificate from a Secret or a ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<SecretOrConfigMap>,
    /// Client key from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<SecretKeySelector>,
    /// Do not verify the target's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    /// The name the certificate must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Lowest TLS version (`TLS12`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    /// Highest TLS version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
    /// CA bundle file in the Prometheus container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Client certificate file in the Prometheus container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    /// Client key file in the Prometheus container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Fields this reconciler does not render: refused, never dropped (see `validate`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: BTreeMap<String, serde_json::Value>,
}

/// A proxy: `proxyUrl`, `noProxy`, `proxyFromEnvironment`, `proxyConnectHeader` (flattened
/// into every client that has one, and into `oauth2`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProxyConfig {
    /// The proxy's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    /// Hosts not to proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
    /// Take the proxy from the environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_from_environment: Option<bool>,
    /// Headers sent to the proxy on CONNECT, each value from a key of a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_connect_header: Option<BTreeMap<String, Vec<SecretKeySelector>>>,
}

/// The HTTP client of a scrape (a ServiceMonitor or PodMonitor endpoint): the operator's
/// `HTTPConfigWithProxy` with its TLS files, flattened into each. One type, so its references
/// are listed, checked and rendered in one place (`credentials`, `validate`, `http`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpClient {
    /// The `Authorization` header: a type (`Bearer` when unset) and credentials from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<SafeAuthorization>,
    /// Basic auth, with the user name and password from Secrets in the object's namespace
    /// (written into the config, as the operator does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// OAuth 2.0 client credentials, from Secrets and ConfigMaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
    /// A bearer token from a Secret (deprecated upstream in favour of `authorization`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_secret: Option<SecretKeySelector>,
    /// A file in the Prometheus container holding a bearer token (ServiceMonitors only;
    /// deprecated upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    /// Follow HTTP redirects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_redirects: Option<bool>,
    /// Use HTTP/2 (`enableHttp2` in monitors; `enableHTTP2` in ScrapeConfigs and their
    /// discovery configs).
    #[serde(
        default,
        alias = "enableHTTP2",
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_http2: Option<bool>,
    /// TLS settings: CA, client certificate and key from Secrets and ConfigMaps (copied into
    /// the TLS-assets Secret) or, for ServiceMonitors, files in the Prometheus container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// The proxy's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    /// Hosts not to proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
    /// Take the proxy from the environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_from_environment: Option<bool>,
    /// Headers sent to the proxy on CONNECT, each value from a key of a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_connect_header: Option<BTreeMap<String, Vec<SecretKeySelector>>>,
}

impl HttpClient {
    /// Its proxy settings. (They are fields of their own, not a flattened [`ProxyConfig`]:
    /// serde reads a flattened struct holding another flattened one as a map, which would
    /// leave every field to the enclosing object's `unrendered` too.)
    pub fn proxy(&self) -> ProxyConfig {
        ProxyConfig {
            proxy_url: self.proxy_url.clone(),
            no_proxy: self.no_proxy.clone(),
            proxy_from_environment: self.proxy_from_environment,
            proxy_connect_header: self.proxy_connect_header.clone(),
        }
    }
}

/// What every scrape object (ServiceMonitor, PodMonitor) sets for all its jobs: limits,
/// protocols, native histograms, the scrape class and node metadata (flattened into each).
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScrapeSettings {
    /// Node metadata on the targets (`attach_metadata`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_metadata: Option<AttachMetadata>,
    /// The Prometheus scrape class whose settings apply (the default class when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_class: Option<String>,
    /// Ingest native histograms (`scrape_native_histograms`, Prometheus 3.8+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_native_histograms: Option<bool>,
    /// Keep scraping the classic form of histograms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_classic_histograms: Option<bool>,
    /// Bucket limit of native histograms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_histogram_bucket_limit: Option<u64>,
    /// Lowest growth factor between native histogram buckets (a Kubernetes quantity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-int-or-string" = true))]
    pub native_histogram_min_bucket_factor: Option<serde_json::Value>,
    /// Convert classic histograms to native histograms with custom buckets.
    #[serde(
        default,
        rename = "convertClassicHistogramsToNHCB",
        skip_serializing_if = "Option::is_none"
    )]
    pub convert_classic_histograms_to_nhcb: Option<bool>,
    /// Per-scrape sample limit (`sample_limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_limit: Option<u64>,
    /// Limit on the number of targets (`target_limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_limit: Option<u64>,
    /// Limit on labels per sample (`label_limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_limit: Option<u64>,
    /// Limit on a label name's length (`label_name_length_limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_name_length_limit: Option<u64>,
    /// Limit on a label value's length (`label_value_length_limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_value_length_limit: Option<u64>,
    /// Dropped targets kept in memory (`keep_dropped_targets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_dropped_targets: Option<u64>,
    /// Scrape protocols to negotiate, in order (`scrape_protocols`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scrape_protocols: Vec<String>,
    /// Protocol used when the target's content type is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_scrape_protocol: Option<String>,
    /// Largest uncompressed response body accepted (`body_size_limit`, for example `10MB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_size_limit: Option<String>,
}
