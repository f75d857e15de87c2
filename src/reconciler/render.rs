//! Prometheus + ServiceMonitors -> a Prometheus configuration in prometheus-operator's shape.
//!
//! Pure and deterministic: the same objects give the same bytes. ServiceMonitors are taken
//! in `namespace/name` order, endpoints in list order, map keys sorted. An invalid
//! ServiceMonitor is left out and reported; an invalid Prometheus (for example a scrape
//! timeout over its scrape interval) makes the whole config an error.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use serde_yaml_ng::{Mapping, Value};

use super::crd::{
    Endpoint, NamespaceSelector, Prometheus, PrometheusRule, PrometheusSpec, RelabelConfig,
    ScrapeClass, ServiceMonitor, ServiceMonitorSpec,
};
use super::credentials::Assets;
use super::http::{Client, TlsAssets};
use super::others::Others;
use super::outputs::Outputs;
use super::rules::{self, RuleFiles};
use super::select::{self, NamespaceLabels, key};
use super::validate;
use super::yaml;

/// Defaults of the Prometheus spec.
const DEFAULT_SCRAPE_INTERVAL: &str = "30s";
const DEFAULT_EVALUATION_INTERVAL: &str = "30s";
const DEFAULT_RETENTION: &str = "24h";

/// A ServiceMonitor (or PrometheusRule) left out of the config, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// `namespace/name`.
    pub object: String,
    /// The reason (the Warning Event's message).
    pub reason: String,
}

/// A generated config.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The config as YAML.
    pub yaml: String,
    /// ServiceMonitors in the config, as `namespace/name`.
    pub selected: Vec<String>,
    /// ServiceMonitors selected but left out.
    pub rejected: Vec<Rejection>,
    /// TLS material the config refers to, for the TLS-assets Secret (file name -> PEM).
    pub tls_assets: TlsAssets,
    /// The rule files the config loads, for the rule ConfigMaps.
    pub rules: RuleFiles,
}

/// Why no config can be generated for a Prometheus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Prometheus {prometheus}: {reason}")]
pub struct ConfigError {
    /// `namespace/name`.
    pub prometheus: String,
    /// The reason.
    pub reason: String,
}

/// Choices that change the output the way prometheus-operator's feature gates do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `PrometheusShardRetentionPolicy` (on by default in v0.94): every job first keeps only
    /// the targets of active shards (the `__tmp_current_shard` rules).
    pub shard_retention_policy: bool,
    /// The operator's `--disable-unmanaged-prometheus-configuration`: a Prometheus without
    /// selectors is rendered (with no jobs) instead of being left to the user.
    pub disable_unmanaged_configuration: bool,
}

impl Default for Options {
    /// The operator's defaults.
    fn default() -> Self {
        Self {
            shard_retention_policy: true,
            disable_unmanaged_configuration: false,
        }
    }
}

impl Options {
    /// Parses the operator's `--feature-gates` syntax (`Name=true,Other=false`) over the
    /// defaults; an unknown gate or value is an error.
    pub fn from_feature_gates(gates: &str) -> Result<Self, FeatureGateError> {
        let mut options = Self::default();
        for gate in gates.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            let (name, value) = gate
                .split_once('=')
                .ok_or_else(|| FeatureGateError::Syntax(gate.to_string()))?;
            let value: bool = value
                .trim()
                .parse()
                .map_err(|_| FeatureGateError::NotABool {
                    name: name.to_string(),
                    value: value.to_string(),
                })?;
            match name.trim() {
                "PrometheusShardRetentionPolicy" => options.shard_retention_policy = value,
                other => return Err(FeatureGateError::Unknown(other.to_string())),
            }
        }
        Ok(options)
    }
}

/// A `--feature-gates` entry that is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeatureGateError {
    /// Not `Name=value`.
    #[error("feature gate {0:?} is not Name=true or Name=false")]
    Syntax(String),
    /// The value is not a boolean.
    #[error("feature gate {name}: {value:?} is not true or false")]
    NotABool {
        /// The gate.
        name: String,
        /// What was given.
        value: String,
    },
    /// A gate that changes nothing this renders (or does not exist).
    #[error("unknown feature gate {0:?} (known: PrometheusShardRetentionPolicy)")]
    Unknown(String),
}

/// Whether the user manages this Prometheus's config: none of the four selectors is set
/// (prometheus-operator's "unmanaged configuration"). Its Secret is then created empty if
/// missing and never overwritten.
pub fn unmanaged(prometheus: &Prometheus, options: &Options) -> bool {
    let spec = &prometheus.spec;
    !options.disable_unmanaged_configuration
        && spec.service_monitor_selector.is_none()
        && [
            "podMonitorSelector",
            "probeSelector",
            "scrapeConfigSelector",
        ]
        .iter()
        .all(|f| {
            spec.unrendered
                .get(*f)
                .is_none_or(serde_json::Value::is_null)
        })
}

/// Renders the config and rule files of `prometheus` from every known ServiceMonitor,
/// PrometheusRule and Namespace; `others` (PodMonitors, Probes, ScrapeConfigs) only refuse it
/// when it selects one.
pub fn render(
    prometheus: &Prometheus,
    namespaces: &NamespaceLabels,
    service_monitors: &[ServiceMonitor],
    prometheus_rules: &[PrometheusRule],
    assets: &Assets,
    others: &Others,
    options: &Options,
) -> Result<Rendered, ConfigError> {
    let error = |reason: String| ConfigError {
        prometheus: key(prometheus),
        reason,
    };
    validate::prometheus(prometheus).map_err(error)?;
    others
        .check(prometheus, namespaces)
        .map_err(|e| error(e.to_string()))?;
    let global = Global::of(prometheus).map_err(error)?;
    let chosen =
        select::service_monitors(prometheus, namespaces, service_monitors).map_err(error)?;
    let rules = rules::render(prometheus, namespaces, prometheus_rules).map_err(error)?;
    // Each job is written as soon as it is built, so only one job's tree is alive at a time;
    // a rejected ServiceMonitor's jobs are cut off again.
    let mut head = Mapping::new();
    head.insert("global".into(), Value::Mapping(global.yaml));
    if let Some(runtime) = runtime(&prometheus.spec) {
        head.insert("runtime".into(), runtime);
    }
    if let Some(paths) = rules::rule_file_paths(prometheus, rules.config_maps().len()) {
        let paths = paths.into_iter().map(Value::from).collect();
        head.insert("rule_files".into(), Value::Sequence(paths));
    }
    let mut yaml = to_yaml(&head);
    let jobs_start = yaml.len();
    yaml.push_str("scrape_configs:\n");
    let jobs_header = yaml.len();
    let mut selected = Vec::new();
    let mut rejected = Vec::new();
    let mut tls_assets = TlsAssets::new();
    for sm in chosen {
        let mark = yaml.len();
        let built = validate::service_monitor(sm, global.interval_ms).and_then(|()| {
            let ctx = JobContext {
                shards: global.shards,
                options,
                spec: &prometheus.spec,
                class: scrape_class(sm, &prometheus.spec)?,
            };
            service_monitor_jobs(sm, &ctx, assets, &mut yaml)
        });
        match built {
            Ok(sm_assets) => {
                selected.push(key(sm));
                tls_assets.extend(sm_assets);
            }
            Err(reason) => {
                yaml.truncate(mark);
                rejected.push(Rejection {
                    object: key(sm),
                    reason,
                });
            }
        }
    }
    let namespace = prometheus.namespace().unwrap_or_default();
    let supports_version = |major, minor| supports(&prometheus.spec, major, minor);
    let outputs = Outputs::new(prometheus, &namespace, assets, &supports_version);
    let additional = outputs
        .additional_scrape_configs(global.shards, options.shard_retention_policy)
        .map_err(error)?;
    if !additional.is_empty() {
        yaml::append(&mut yaml, &Value::Sequence(additional));
    }
    if yaml.len() == jobs_header {
        yaml.truncate(jobs_start);
        yaml.push_str("scrape_configs: []\n");
    }
    let mut tail = Mapping::new();
    if let Some(storage) = storage(prometheus) {
        tail.insert("storage".into(), storage);
    }
    let sections = [
        ("alerting", outputs.alerting(prometheus, &mut tls_assets)),
        ("remote_write", outputs.remote_write(&mut tls_assets)),
        ("remote_read", outputs.remote_read(&mut tls_assets)),
    ];
    for (key, section) in sections {
        if let Some(value) = section.map_err(error)? {
            tail.insert(key.into(), value);
        }
    }
    if !tail.is_empty() {
        yaml.push_str(&to_yaml(&tail));
    }
    Ok(Rendered {
        yaml,
        selected,
        rejected,
        tls_assets,
        rules,
    })
}

/// The limits of a Prometheus: key, global value, enforced upper bound, minimum version.
type GlobalLimit = (&'static str, Option<u64>, Option<u64>, (u64, u64));

fn global_limits(spec: &PrometheusSpec) -> [GlobalLimit; 6] {
    [
        (
            "sample_limit",
            spec.sample_limit,
            spec.enforced_sample_limit,
            (2, 45),
        ),
        (
            "target_limit",
            spec.target_limit,
            spec.enforced_target_limit,
            (2, 45),
        ),
        (
            "label_limit",
            spec.label_limit,
            spec.enforced_label_limit,
            (2, 45),
        ),
        (
            "label_name_length_limit",
            spec.label_name_length_limit,
            spec.enforced_label_name_length_limit,
            (2, 45),
        ),
        (
            "label_value_length_limit",
            spec.label_value_length_limit,
            spec.enforced_label_value_length_limit,
            (2, 45),
        ),
        (
            "keep_dropped_targets",
            spec.keep_dropped_targets,
            spec.enforced_keep_dropped_targets,
            (2, 47),
        ),
    ]
}

/// A job's limit under an enforced one, as the operator computes it: the smaller of the two;
/// without a job limit, none (from Prometheus 2.45 the global section carries the enforced
/// one) or the enforced one (older versions).
fn job_limit(user: Option<u64>, enforced: Option<u64>, ctx: &JobContext) -> Option<u64> {
    match (user, enforced.filter(|e| *e > 0)) {
        (user, None) => user,
        (None | Some(0), Some(e)) => (!ctx.supports(2, 45)).then_some(e),
        (Some(u), Some(e)) => Some(u.min(e)),
    }
}

/// The smaller of a job's body size limit and the enforced one, in bytes (units are powers of
/// 1024, as Prometheus reads them); either one when the other is unset.
fn lower_size<'a>(user: Option<&'a str>, enforced: Option<&'a str>) -> Option<&'a str> {
    let (user, enforced) = (
        user.filter(|s| !s.is_empty()),
        enforced.filter(|s| !s.is_empty()),
    );
    match (user, enforced) {
        (Some(u), Some(e)) if size_bytes(u) > size_bytes(e) => Some(e),
        (Some(u), _) => Some(u),
        (None, e) => e,
    }
}

fn size_bytes(s: &str) -> f64 {
    let digits = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let number: f64 = s[..digits].parse().unwrap_or(0.0);
    let power = match s[digits..].chars().next() {
        Some('K') => 1,
        Some('M') => 2,
        Some('G') => 3,
        Some('T') => 4,
        Some('P') => 5,
        Some('E') => 6,
        _ => 0,
    };
    number * 1024f64.powi(power)
}

/// `storage.tsdb.retention`, which prometheus-operator writes for Prometheus 3.11 and later
/// (its default version is v3.14): `time` is `spec.retention`, or 24h when no retention is
/// set at all; `size` is `spec.retentionSize`.
fn storage(prometheus: &Prometheus) -> Option<Value> {
    let spec = &prometheus.spec;
    if !supports(spec, 2, 29) {
        return None;
    }
    let mut storage = Mapping::new();
    if let Some(max) = spec.exemplars.as_ref().and_then(|e| e.max_size) {
        storage.insert("exemplars".into(), map([("max_exemplars", max.into())]));
    }
    let mut tsdb = Mapping::new();
    if let Some(settings) = &spec.tsdb {
        if let Some(window) = settings
            .out_of_order_time_window
            .as_deref()
            .filter(|_| supports(spec, 2, 39))
        {
            tsdb.insert("out_of_order_time_window".into(), window.into());
        }
        if let Some(threshold) = settings
            .stale_series_compaction_threshold
            .as_ref()
            .and_then(validate::quantity)
            .filter(|_| supports(spec, 3, 10))
        {
            tsdb.insert(
                "stale_series_compaction_threshold".into(),
                go_float(threshold),
            );
        }
        if let Some(floats) = settings
            .chunk_encoding
            .as_ref()
            .and_then(|c| c.floats.as_deref())
            .filter(|_| supports(spec, 3, 13))
        {
            tsdb.insert(
                "chunk_encoding".into(),
                map([("floats", floats.to_ascii_lowercase().into())]),
            );
        }
    }
    let percentage = spec
        .retention_percentage
        .as_ref()
        .and_then(validate::quantity);
    if supports(spec, 3, 11) {
        let time = spec.retention.as_deref().filter(|t| !t.is_empty());
        let size = spec.retention_size.as_deref().filter(|s| !s.is_empty());
        let by_percentage = percentage.is_some_and(|p| p != 0.0);
        let mut retention = Mapping::new();
        match (time, size) {
            (Some(t), _) => {
                retention.insert("time".into(), t.into());
            }
            (None, None) if !by_percentage => {
                retention.insert("time".into(), DEFAULT_RETENTION.into());
            }
            (None, _) => {}
        }
        if let Some(size) = size {
            retention.insert("size".into(), size.into());
        }
        if let Some(percentage) = percentage {
            retention.insert("percentage".into(), go_float(percentage));
        }
        if !retention.is_empty() {
            tsdb.insert("retention".into(), Value::Mapping(retention));
        }
    }
    if !tsdb.is_empty() {
        storage.insert("tsdb".into(), Value::Mapping(tsdb));
    }
    (!storage.is_empty()).then_some(Value::Mapping(storage))
}

/// Whether a Prometheus version (`v3.9.1`, `3.11.0`) is below `(major, minor)`; an
/// unparsable version is not.
fn version_below(version: &str, (major, minor): (u64, u64)) -> bool {
    let mut parts = version.trim_start_matches('v').split('.');
    let number = |p: Option<&str>| p.and_then(|p| p.parse::<u64>().ok());
    match (number(parts.next()), number(parts.next())) {
        (Some(a), Some(b)) => (a, b) < (major, minor),
        _ => false,
    }
}

/// A float as Go writes it: a whole one without a fraction (`1`, not `1.0`).
pub(super) fn go_float(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        (value as i64).into()
    } else {
        value.into()
    }
}

/// A log file as the operator places it: a bare file name goes under `/var/log/prometheus`
/// (the volume it mounts there), a path is kept.
fn log_file_path(file: &str) -> String {
    let mut bare = file;
    while let Some(rest) = bare.strip_prefix("./") {
        bare = rest.trim_start_matches('/');
    }
    if file.is_empty() || bare.contains('/') {
        file.to_string()
    } else {
        format!("/var/log/prometheus/{bare}")
    }
}

/// The `runtime` section (from Prometheus 2.53).
fn runtime(spec: &PrometheusSpec) -> Option<Value> {
    let runtime = spec.runtime.as_ref().filter(|_| supports(spec, 2, 53))?;
    let mut out = Mapping::new();
    if let Some(gogc) = runtime.go_gc {
        out.insert("gogc".into(), gogc.into());
    }
    Some(Value::Mapping(out))
}

fn to_yaml<T: serde::Serialize>(value: &T) -> String {
    serde_yaml_ng::to_string(value).expect("a YAML value always serializes")
}

/// The `global` section and what the jobs need from it.
struct Global {
    yaml: Mapping,
    interval_ms: u64,
    shards: u64,
}

impl Global {
    fn of(prometheus: &Prometheus) -> Result<Self, String> {
        let spec = &prometheus.spec;
        let interval = spec
            .scrape_interval
            .as_deref()
            .unwrap_or(DEFAULT_SCRAPE_INTERVAL);
        let interval_ms =
            validate::duration_ms(interval).map_err(|e| format!("scrapeInterval: {e}"))?;
        let evaluation = spec
            .evaluation_interval
            .as_deref()
            .unwrap_or(DEFAULT_EVALUATION_INTERVAL);
        validate::duration_ms(evaluation).map_err(|e| format!("evaluationInterval: {e}"))?;
        let mut yaml = Mapping::new();
        yaml.insert("scrape_interval".into(), interval.into());
        if let Some(timeout) = &spec.scrape_timeout {
            let ms = validate::duration_ms(timeout).map_err(|e| format!("scrapeTimeout: {e}"))?;
            if ms > interval_ms {
                return Err(format!(
                    "scrapeTimeout {timeout} is greater than scrapeInterval {interval}"
                ));
            }
            yaml.insert("scrape_timeout".into(), timeout.as_str().into());
        }
        let supports = |major, minor| supports(spec, major, minor);
        if !spec.scrape_protocols.is_empty() && supports(2, 49) {
            let protocols: Vec<&str> = spec
                .scrape_protocols
                .iter()
                .map(String::as_str)
                .filter(|p| *p != "PrometheusText1.0.0" || supports(3, 0))
                .collect();
            yaml.insert("scrape_protocols".into(), strings(&protocols));
        }
        // The operator's names win over the user's labels of the same name; an empty name
        // leaves its label out.
        let mut labels: BTreeMap<String, String> = spec.external_labels.clone().unwrap_or_default();
        let name = spec
            .prometheus_external_label_name
            .as_deref()
            .unwrap_or("prometheus");
        if !name.is_empty() {
            labels.insert(name.into(), key(prometheus));
        }
        let replica = spec
            .replica_external_label_name
            .as_deref()
            .unwrap_or("prometheus_replica");
        if !replica.is_empty() {
            labels.insert(replica.into(), "$(POD_NAME)".into());
        }
        yaml.insert("external_labels".into(), string_map(&labels));
        if supports(2, 45) {
            let body = spec
                .body_size_limit
                .as_deref()
                .or(spec.enforced_body_size_limit.as_deref())
                .filter(|s| !s.is_empty());
            if let Some(body) = body {
                yaml.insert("body_size_limit".into(), body.into());
            }
            for (key, limit, enforced, min) in global_limits(spec) {
                if !supports(min.0, min.1) {
                    continue;
                }
                let value = match (limit.filter(|l| *l > 0), enforced.filter(|e| *e > 0)) {
                    (Some(l), Some(e)) => Some(l.min(e)),
                    (Some(l), None) => Some(l),
                    (None, e) => e,
                };
                if let Some(value) = value {
                    yaml.insert(key.into(), value.into());
                }
            }
        }
        if let Some(file) = spec
            .scrape_failure_log_file
            .as_deref()
            .filter(|_| supports(2, 55))
        {
            yaml.insert("scrape_failure_log_file".into(), log_file_path(file).into());
        }
        if let Some(scheme) = spec
            .name_validation_scheme
            .as_deref()
            .filter(|_| supports(3, 0))
        {
            yaml.insert(
                "metric_name_validation_scheme".into(),
                scheme.to_ascii_lowercase().into(),
            );
        }
        let escaping = match spec.name_escaping_scheme.as_deref() {
            Some("AllowUTF8") => Some("allow-utf-8"),
            Some("Underscores") => Some("underscores"),
            Some("Dots") => Some("dots"),
            Some("Values") => Some("values"),
            _ => None,
        };
        if let Some(scheme) = escaping.filter(|_| supports(3, 4)) {
            yaml.insert("metric_name_escaping_scheme".into(), scheme.into());
        }
        for (key, setting, min) in [
            (
                "convert_classic_histograms_to_nhcb",
                spec.convert_classic_histograms_to_nhcb,
                (3, 4),
            ),
            (
                "always_scrape_classic_histograms",
                spec.scrape_classic_histograms,
                (3, 5),
            ),
            (
                "scrape_native_histograms",
                spec.scrape_native_histograms,
                (3, 8),
            ),
        ] {
            if let Some(on) = setting.filter(|_| supports(min.0, min.1)) {
                yaml.insert(key.into(), on.into());
            }
        }
        yaml.insert("evaluation_interval".into(), evaluation.into());
        if let Some(offset) = spec
            .rule_query_offset
            .as_deref()
            .filter(|_| supports(2, 53))
        {
            yaml.insert("rule_query_offset".into(), offset.into());
        }
        if let Some(file) = spec
            .query_log_file
            .as_deref()
            .filter(|f| !f.is_empty() && supports(2, 16))
        {
            yaml.insert("query_log_file".into(), log_file_path(file).into());
        }
        let shards = match spec.shards {
            None => 1,
            Some(n) if n >= 1 => n as u64,
            Some(n) => return Err(format!("shards must be at least 1, not {n}")),
        };
        Ok(Self {
            yaml,
            interval_ms,
            shards,
        })
    }
}

pub(super) fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Mapping(
        m.iter()
            .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
            .collect(),
    )
}

pub(super) fn strings(items: &[&str]) -> Value {
    Value::Sequence(items.iter().map(|s| (*s).into()).collect())
}

/// Builds a mapping from keys and values, in order.
pub(super) fn map<const N: usize>(items: [(&str, Value); N]) -> Value {
    Value::Mapping(items.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// Label names are sanitised as prometheus-operator does: `[^a-zA-Z0-9_]` -> `_`.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What every job of one Prometheus shares.
struct JobContext<'a> {
    shards: u64,
    options: &'a Options,
    /// The Prometheus's settings that shape every job.
    spec: &'a PrometheusSpec,
    /// The ServiceMonitor's scrape class (named, or the default one).
    class: Option<&'a ScrapeClass>,
}

/// The scrape class a ServiceMonitor names (which must exist), or the Prometheus's default.
fn scrape_class<'a>(
    sm: &ServiceMonitor,
    spec: &'a PrometheusSpec,
) -> Result<Option<&'a ScrapeClass>, String> {
    match sm.spec.scrape_class.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => spec
            .scrape_classes
            .iter()
            .find(|c| c.name == name)
            .map(Some)
            .ok_or_else(|| {
                format!("spec.scrapeClass: {name:?} is not one of the Prometheus's scrapeClasses")
            }),
        None => Ok(spec.scrape_classes.iter().find(|c| c.default == Some(true))),
    }
}

impl JobContext<'_> {
    fn supports(&self, major: u64, minor: u64) -> bool {
        supports(self.spec, major, minor)
    }
}

/// Whether the Prometheus's `spec.version` supports a setting that needs `major.minor`:
/// settings it does not support are left out, as the operator leaves them out (unset means
/// the operator's default version, v3.14, which supports all of them).
pub(super) fn supports(spec: &PrometheusSpec, major: u64, minor: u64) -> bool {
    spec.version
        .as_deref()
        .is_none_or(|v| !version_below(v, (major, minor)))
}

/// Appends the jobs of one ServiceMonitor to `out` and returns the TLS material they refer
/// to, or why it is refused (a reference that cannot be resolved: never a job without it).
fn service_monitor_jobs(
    sm: &ServiceMonitor,
    ctx: &JobContext,
    assets: &Assets,
    out: &mut String,
) -> Result<TlsAssets, String> {
    let ns = sm.namespace().unwrap_or_default();
    let supports = |major, minor| ctx.supports(major, minor);
    let client = Client {
        namespace: &ns,
        assets,
        supports: &supports,
    };
    let mut tls_assets = TlsAssets::new();
    let deny_files = ctx
        .spec
        .arbitrary_fs_access_through_sms
        .as_ref()
        .is_some_and(|a| a.deny);
    for (i, ep) in sm.spec.endpoints.iter().enumerate() {
        let path = format!("spec.endpoints[{i}]");
        if deny_files {
            validate::no_files(ep).map_err(|e| format!("{path}: {e}"))?;
        }
        let client = client.entries(ep, ctx.class, &path, &mut tls_assets)?;
        let job = scrape_job(sm, ep, i, ctx, client);
        yaml::append(out, &Value::Sequence(vec![Value::Mapping(job)]));
    }
    Ok(tls_assets)
}

fn scrape_job(
    sm: &ServiceMonitor,
    ep: &Endpoint,
    index: usize,
    ctx: &JobContext,
    client: Mapping,
) -> Mapping {
    let ns = sm.namespace().unwrap_or_default();
    let mut job = Mapping::new();
    job.insert(
        "job_name".into(),
        format!("serviceMonitor/{ns}/{}/{index}", sm.name_any()).into(),
    );
    let spec = ctx.spec;
    let override_labels = spec.override_honor_labels.unwrap_or(false);
    job.insert(
        "honor_labels".into(),
        (ep.honor_labels.unwrap_or(false) && !override_labels).into(),
    );
    let override_timestamps = spec.override_honor_timestamps.unwrap_or(false);
    if ep.honor_timestamps.is_some() || override_timestamps {
        let honor = ep.honor_timestamps.unwrap_or(false) && !override_timestamps;
        job.insert("honor_timestamps".into(), honor.into());
    }
    if let Some(track) = ep
        .track_timestamps_staleness
        .filter(|_| ctx.supports(2, 48))
    {
        job.insert("track_timestamps_staleness".into(), track.into());
    }
    let ignore_selectors = spec.ignore_namespace_selectors.unwrap_or(false);
    job.insert(
        "kubernetes_sd_configs".into(),
        sd_config(sm, &ns, ignore_selectors, ctx),
    );
    let optional = [
        ("scrape_interval", ep.interval.clone()),
        ("scrape_timeout", ep.scrape_timeout.clone()),
        ("metrics_path", ep.path.clone()),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            job.insert(k.into(), v.into());
        }
    }
    if let Some(params) = &ep.params {
        let params = params
            .iter()
            .map(|(k, vs)| {
                (
                    k.as_str().into(),
                    strings(&vs.iter().map(String::as_str).collect::<Vec<_>>()),
                )
            })
            .collect();
        job.insert("params".into(), Value::Mapping(params));
    }
    if let Some(scheme) = &ep.scheme {
        job.insert("scheme".into(), scheme.to_ascii_lowercase().into());
    }
    if let Some(follow) = ep.follow_redirects.filter(|_| ctx.supports(2, 26)) {
        job.insert("follow_redirects".into(), follow.into());
    }
    if let Some(http2) = ep.enable_http2.filter(|_| ctx.supports(2, 35)) {
        job.insert("enable_http2".into(), http2.into());
    }
    job.extend(client);
    job.insert(
        "relabel_configs".into(),
        Value::Sequence(relabelings(sm, ep, ctx)),
    );
    let enforced = global_limits(spec);
    let spec = &sm.spec;
    let limits = [
        ("sample_limit", spec.sample_limit, (0, 0)),
        ("target_limit", spec.target_limit, (2, 21)),
        ("label_limit", spec.label_limit, (2, 27)),
        (
            "label_name_length_limit",
            spec.label_name_length_limit,
            (2, 27),
        ),
        (
            "label_value_length_limit",
            spec.label_value_length_limit,
            (2, 27),
        ),
        ("keep_dropped_targets", spec.keep_dropped_targets, (2, 47)),
    ];
    for ((key, limit, (major, minor)), (_, _, enforced, _)) in limits.into_iter().zip(enforced) {
        let limit = job_limit(limit, enforced, ctx);
        if let Some(limit) = limit.filter(|_| ctx.supports(major, minor)) {
            job.insert(key.into(), limit.into());
        }
    }
    native_histograms(spec, ctx, &mut job);
    if !spec.scrape_protocols.is_empty() && ctx.supports(2, 49) {
        let protocols: Vec<&str> = spec
            .scrape_protocols
            .iter()
            .map(String::as_str)
            .filter(|p| *p != "PrometheusText1.0.0" || ctx.supports(3, 0))
            .collect();
        job.insert("scrape_protocols".into(), strings(&protocols));
    }
    let class_fallback = ctx
        .class
        .and_then(|c| c.fallback_scrape_protocol.as_deref());
    if let Some(fallback) = spec
        .fallback_scrape_protocol
        .as_deref()
        .or(class_fallback)
        .filter(|_| ctx.supports(3, 0))
    {
        job.insert("fallback_scrape_protocol".into(), fallback.into());
    }
    let size = lower_size(
        spec.body_size_limit.as_deref(),
        ctx.spec.enforced_body_size_limit.as_deref(),
    );
    if let Some(size) = size.filter(|_| ctx.supports(2, 28)) {
        job.insert("body_size_limit".into(), size.into());
    }
    let class_rules = ctx.class.map(|c| c.metric_relabelings.as_slice());
    let mut metric_rules: Vec<Value> = class_rules
        .unwrap_or_default()
        .iter()
        .chain(&ep.metric_relabelings)
        .map(user_rule)
        .collect();
    metric_rules.extend(namespace_label_rule(ctx, sm));
    if !metric_rules.is_empty() {
        job.insert(
            "metric_relabel_configs".into(),
            Value::Sequence(metric_rules),
        );
    }
    job
}

/// The native-histogram settings, each from the Prometheus version that has it.
fn native_histograms(spec: &ServiceMonitorSpec, ctx: &JobContext, job: &mut Mapping) {
    if let Some(on) = spec.scrape_native_histograms.filter(|_| ctx.supports(3, 8)) {
        job.insert("scrape_native_histograms".into(), on.into());
    }
    if let Some(limit) = spec
        .native_histogram_bucket_limit
        .filter(|_| ctx.supports(2, 45))
    {
        job.insert("native_histogram_bucket_limit".into(), limit.into());
    }
    let factor = spec.native_histogram_min_bucket_factor.as_ref();
    if let Some(factor) = factor
        .and_then(validate::quantity)
        .filter(|_| ctx.supports(2, 50))
    {
        job.insert(
            "native_histogram_min_bucket_factor".into(),
            go_float(factor),
        );
    }
    if let Some(classic) = spec.scrape_classic_histograms {
        if ctx.supports(3, 0) {
            job.insert("always_scrape_classic_histograms".into(), classic.into());
        } else if ctx.supports(2, 45) {
            job.insert("scrape_classic_histograms".into(), classic.into());
        }
    }
    if let Some(convert) = spec
        .convert_classic_histograms_to_nhcb
        .filter(|_| ctx.supports(3, 0))
    {
        job.insert("convert_classic_histograms_to_nhcb".into(), convert.into());
    }
}

/// `enforcedNamespaceLabel`: the label set to the ServiceMonitor's namespace, appended last
/// so no relabeling of the user's can override it; not for ServiceMonitors listed in
/// `excludedFromEnforcement`.
fn namespace_label_rule(ctx: &JobContext, sm: &ServiceMonitor) -> Option<Value> {
    let label = ctx
        .spec
        .enforced_namespace_label
        .as_deref()
        .filter(|l| !l.is_empty())?;
    let ns = sm.namespace().unwrap_or_default();
    let excluded = ctx.spec.excluded_from_enforcement.iter().any(|r| {
        let group = if r.group.is_empty() {
            "monitoring.coreos.com"
        } else {
            r.group.as_str()
        };
        group == "monitoring.coreos.com"
            && r.resource == "servicemonitors"
            && r.namespace == ns
            && r.name
                .as_deref()
                .is_none_or(|n| n.is_empty() || n == sm.name_any())
    });
    if excluded {
        return None;
    }
    Some(map([
        ("target_label", label.into()),
        ("replacement", ns.as_str().into()),
    ]))
}

/// The Kubernetes SD role of a ServiceMonitor's jobs: `endpointslice` when it (or, by
/// default, its Prometheus) asks for `EndpointSlice` and Prometheus supports it (2.21+).
fn role(sm: &ServiceMonitor, ctx: &JobContext) -> &'static str {
    let wanted = sm
        .spec
        .service_discovery_role
        .as_deref()
        .or(ctx.spec.service_discovery_role.as_deref());
    if wanted == Some("EndpointSlice") && ctx.supports(2, 21) {
        "endpointslice"
    } else {
        "endpoints"
    }
}

/// Whether Services are selected by the SD's label selectors rather than by keep rules.
fn role_selector(sm: &ServiceMonitor) -> bool {
    sm.spec.selector_mechanism.as_deref() == Some("RoleSelector")
}

fn sd_config(sm: &ServiceMonitor, ns: &str, ignore_selectors: bool, ctx: &JobContext) -> Value {
    let selector = if ignore_selectors {
        NamespaceSelector::default()
    } else {
        sm.spec.namespace_selector.clone().unwrap_or_default()
    };
    let mut sd = Mapping::new();
    sd.insert("role".into(), role(sm, ctx).into());
    if !selector.any {
        let names: Vec<&str> = if selector.match_names.is_empty() {
            vec![ns]
        } else {
            selector.match_names.iter().map(String::as_str).collect()
        };
        sd.insert("namespaces".into(), map([("names", strings(&names))]));
    }
    let class_attach = ctx.class.and_then(|c| c.attach_metadata.as_ref());
    if let Some(attach) = sm
        .spec
        .attach_metadata
        .as_ref()
        .or(class_attach)
        .filter(|_| ctx.supports(2, 37))
    {
        let node = attach.node.unwrap_or(false);
        sd.insert("attach_metadata".into(), map([("node", node.into())]));
    }
    if role_selector(sm) {
        let label = select::selector_string(&sm.spec.selector);
        let selectors = [role(sm, ctx), "service"]
            .into_iter()
            .map(|r| map([("role", r.into()), ("label", label.as_str().into())]))
            .collect();
        sd.insert("selectors".into(), Value::Sequence(selectors));
    }
    Value::Sequence(vec![Value::Mapping(sd)])
}

/// The relabelings of one job, in prometheus-operator's order.
fn relabelings(sm: &ServiceMonitor, ep: &Endpoint, ctx: &JobContext) -> Vec<Value> {
    let mut rules = vec![map([
        ("source_labels", strings(&["job"])),
        ("target_label", "__tmp_prometheus_job_name".into()),
    ])];
    if !role_selector(sm) {
        rules.extend(selector_rules(sm));
    }
    let slices = role(sm, ctx) == "endpointslice";
    rules.extend(port_rule(ep, slices));
    rules.extend(meta_rules(ep, slices));
    for (labels, prefix) in [
        (&sm.spec.target_labels, "__meta_kubernetes_service_label_"),
        (&sm.spec.pod_target_labels, "__meta_kubernetes_pod_label_"),
        (&ctx.spec.pod_target_labels, "__meta_kubernetes_pod_label_"),
    ] {
        rules.extend(labels.iter().map(|l| copy_label(prefix, l, &sanitize(l))));
    }
    rules.push(map([
        (
            "source_labels",
            strings(&["__meta_kubernetes_service_name"]),
        ),
        ("target_label", "job".into()),
        ("replacement", "${1}".into()),
    ]));
    if let Some(job_label) = &sm.spec.job_label {
        rules.push(copy_label(
            "__meta_kubernetes_service_label_",
            job_label,
            "job",
        ));
    }
    if let Some(endpoint) = endpoint_name(ep) {
        rules.push(map([
            ("target_label", "endpoint".into()),
            ("replacement", endpoint.into()),
        ]));
    }
    let class_rules = ctx.class.map(|c| c.relabelings.as_slice());
    rules.extend(class_rules.unwrap_or_default().iter().map(user_rule));
    rules.extend(ep.relabelings.iter().map(user_rule));
    rules.extend(namespace_label_rule(ctx, sm));
    rules.extend(sharding_rules(
        ctx.shards,
        ctx.options.shard_retention_policy,
    ));
    rules
}

fn selector_rules(sm: &ServiceMonitor) -> Vec<Value> {
    let labels = |k: &str| {
        let k = sanitize(k);
        format!("__meta_kubernetes_service_label_{k}")
    };
    let present = |k: &str| {
        let k = sanitize(k);
        format!("__meta_kubernetes_service_labelpresent_{k}")
    };
    let keep_drop = |action: &str, sources: Vec<String>, regex: String| {
        let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
        map([
            ("action", action.into()),
            ("source_labels", strings(&sources)),
            ("regex", regex.into()),
        ])
    };
    let selector = &sm.spec.selector;
    let mut rules: Vec<Value> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| keep_drop("keep", vec![labels(k), present(k)], format!("({v});true")))
        .collect();
    for req in selector.match_expressions.iter().flatten() {
        let values = req.values.as_deref().unwrap_or_default().join("|");
        let k = &req.key;
        rules.push(match req.operator.as_str() {
            "In" => keep_drop(
                "keep",
                vec![labels(k), present(k)],
                format!("({values});true"),
            ),
            "NotIn" => keep_drop(
                "drop",
                vec![labels(k), present(k)],
                format!("({values});true"),
            ),
            "Exists" => keep_drop("keep", vec![present(k)], "true".into()),
            _ => keep_drop("drop", vec![present(k)], "true".into()),
        });
    }
    rules
}

fn port_rule(ep: &Endpoint, slices: bool) -> Option<Value> {
    let port_name = if slices {
        "__meta_kubernetes_endpointslice_port_name"
    } else {
        "__meta_kubernetes_endpoint_port_name"
    };
    // A port number is written as a YAML integer, as the operator writes it.
    let (source, regex): (&str, Value) = match (&ep.port, &ep.target_port) {
        (Some(port), _) => (port_name, port.as_str().into()),
        (None, Some(IntOrString::String(name))) => (
            "__meta_kubernetes_pod_container_port_name",
            name.as_str().into(),
        ),
        (None, Some(IntOrString::Int(n))) if *n != 0 => {
            ("__meta_kubernetes_pod_container_port_number", (*n).into())
        }
        _ => return None,
    };
    Some(map([
        ("action", "keep".into()),
        ("source_labels", strings(&[source])),
        ("regex", regex),
    ]))
}

fn endpoint_name(ep: &Endpoint) -> Option<String> {
    match (&ep.port, &ep.target_port) {
        (Some(port), _) => Some(port.clone()),
        (None, Some(IntOrString::String(name))) if !name.is_empty() => Some(name.clone()),
        (None, Some(IntOrString::Int(n))) => Some(n.to_string()),
        _ => None,
    }
}

fn meta_rules(ep: &Endpoint, slices: bool) -> Vec<Value> {
    let target = if slices {
        [
            "__meta_kubernetes_endpointslice_address_target_kind",
            "__meta_kubernetes_endpointslice_address_target_name",
        ]
    } else {
        [
            "__meta_kubernetes_endpoint_address_target_kind",
            "__meta_kubernetes_endpoint_address_target_name",
        ]
    };
    let from_target = |kind: &str, label: &str| {
        map([
            ("source_labels", strings(&target)),
            ("separator", ";".into()),
            ("regex", format!("{kind};(.*)").into()),
            ("replacement", "${1}".into()),
            ("target_label", label.into()),
        ])
    };
    let copy = |source: &str, label: &str| {
        map([
            ("source_labels", strings(&[source])),
            ("target_label", label.into()),
        ])
    };
    let mut rules = vec![
        from_target("Node", "node"),
        from_target("Pod", "pod"),
        copy("__meta_kubernetes_namespace", "namespace"),
        copy("__meta_kubernetes_service_name", "service"),
        copy("__meta_kubernetes_pod_name", "pod"),
        copy("__meta_kubernetes_pod_container_name", "container"),
    ];
    if ep.filter_running.unwrap_or(true) {
        rules.push(map([
            ("action", "drop".into()),
            ("source_labels", strings(&["__meta_kubernetes_pod_phase"])),
            ("regex", "(Failed|Succeeded)".into()),
        ]));
    }
    rules
}

/// Copies a non-empty label from `prefix + sanitize(label)` to `target`.
fn copy_label(prefix: &str, label: &str, target: &str) -> Value {
    map([
        (
            "source_labels",
            strings(&[&format!("{prefix}{}", sanitize(label))]),
        ),
        ("target_label", target.into()),
        ("regex", "(.+)".into()),
        ("replacement", "${1}".into()),
    ])
}

/// A user's relabel rule in Prometheus's snake_case, action lower-cased.
pub(super) fn user_rule(rule: &RelabelConfig) -> Value {
    let mut m = Mapping::new();
    if !rule.source_labels.is_empty() {
        let sources: Vec<&str> = rule.source_labels.iter().map(String::as_str).collect();
        m.insert("source_labels".into(), strings(&sources));
    }
    let optional = [
        ("separator", rule.separator.clone()),
        ("target_label", rule.target_label.clone()),
        ("regex", rule.regex.clone()),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            m.insert(k.into(), v.into());
        }
    }
    if let Some(modulus) = rule.modulus {
        m.insert("modulus".into(), modulus.into());
    }
    if let Some(replacement) = &rule.replacement {
        m.insert("replacement".into(), replacement.as_str().into());
    }
    if let Some(action) = &rule.action {
        m.insert("action".into(), action.to_ascii_lowercase().into());
    }
    Value::Mapping(m)
}

pub(super) fn sharding_rules(shards: u64, retention_policy: bool) -> Vec<Value> {
    let mut rules = Vec::new();
    if retention_policy {
        // Only targets of an active shard, [0, shards): a shard kept after a scale-down
        // (retention policy Retain) scrapes nothing.
        let active: Vec<String> = (0..shards).map(|i| i.to_string()).collect();
        rules.push(map([
            ("target_label", "__tmp_current_shard".into()),
            ("replacement", "$(SHARD)".into()),
            ("action", "replace".into()),
        ]));
        rules.push(map([
            ("source_labels", strings(&["__tmp_current_shard"])),
            ("regex", active.join("|").into()),
            ("action", "keep".into()),
        ]));
    }
    rules.extend([
        map([
            ("source_labels", strings(&["__address__", "__tmp_hash"])),
            ("target_label", "__tmp_hash".into()),
            ("regex", "(.+);".into()),
            ("replacement", "$1".into()),
            ("action", "replace".into()),
        ]),
        map([
            ("source_labels", strings(&["__tmp_hash"])),
            ("target_label", "__tmp_hash".into()),
            ("modulus", shards.into()),
            ("action", "hashmod".into()),
        ]),
        map([
            (
                "source_labels",
                strings(&["__tmp_hash", "__tmp_disable_sharding"]),
            ),
            ("regex", "$(SHARD);|.+;.+".into()),
            ("action", "keep".into()),
        ]),
    ]);
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_files_go_where_the_operator_puts_them() {
        assert_eq!(log_file_path("q.log"), "/var/log/prometheus/q.log");
        assert_eq!(log_file_path("./q.log"), "/var/log/prometheus/q.log");
        assert_eq!(log_file_path("/tmp/q.log"), "/tmp/q.log");
        assert_eq!(log_file_path("logs/q.log"), "logs/q.log");
        assert_eq!(log_file_path(""), "");
    }

    #[test]
    fn label_names_are_sanitised() {
        assert_eq!(sanitize("app.kubernetes.io/name"), "app_kubernetes_io_name");
        assert_eq!(sanitize("ok_1"), "ok_1");
    }

    #[test]
    fn feature_gates_parse_like_the_operators() {
        assert!(Options::default().shard_retention_policy);
        let off = Options::from_feature_gates("PrometheusShardRetentionPolicy=false").unwrap();
        assert!(!off.shard_retention_policy);
        assert_eq!(
            Options::from_feature_gates(" ").unwrap(),
            Options::default()
        );
        for (bad, error) in [
            ("Nope=true", FeatureGateError::Unknown("Nope".into())),
            (
                "PrometheusShardRetentionPolicy",
                FeatureGateError::Syntax("PrometheusShardRetentionPolicy".into()),
            ),
            (
                "PrometheusShardRetentionPolicy=maybe",
                FeatureGateError::NotABool {
                    name: "PrometheusShardRetentionPolicy".into(),
                    value: "maybe".into(),
                },
            ),
        ] {
            assert_eq!(Options::from_feature_gates(bad), Err(error), "{bad}");
        }
    }

    #[test]
    fn retention_goes_into_storage_from_prometheus_3_11() {
        let prom = |spec: &str| -> Prometheus {
            serde_yaml_ng::from_str(&format!(
                "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: k, namespace: n}}\nspec: {spec}"
            ))
            .unwrap()
        };
        let yaml = |p: &Prometheus| storage(p).map(|v| to_yaml(&v));
        assert_eq!(
            yaml(&prom("{}")).unwrap(),
            "tsdb:\n  retention:\n    time: 24h\n"
        );
        assert_eq!(
            yaml(&prom("{retention: 15d, retentionSize: 10GB}")).unwrap(),
            "tsdb:\n  retention:\n    time: 15d\n    size: 10GB\n"
        );
        assert_eq!(
            yaml(&prom("{retentionSize: 10GB}")).unwrap(),
            "tsdb:\n  retention:\n    size: 10GB\n"
        );
        assert_eq!(yaml(&prom("{version: v3.10.2}")), None);
        assert!(yaml(&prom("{version: v3.11.0}")).is_some());
        assert!(yaml(&prom("{version: latest}")).is_some());
    }
}
