//! Prometheus + its scrape objects -> a Prometheus configuration in prometheus-operator's
//! shape.
//!
//! Check, then render: [`super::check`] selects the ServiceMonitors, PodMonitors, Probes and
//! ScrapeConfigs and checks each whole (credentials resolved, fields validated, version gates applied);
//! rendering sees only the accepted ones and cannot fail per object. A rejected object costs
//! only itself; an invalid Prometheus (for example a scrape timeout over its scrape interval)
//! makes the whole config an error.
//!
//! Pure and deterministic: the same objects give the same bytes. Objects are taken by kind
//! (ServiceMonitors, PodMonitors, Probes, then ScrapeConfigs), each in `namespace/name` order, endpoints in list
//! order, map keys sorted. The parts: `global` (the Prometheus's own sections), `job`
//! (what every job shares), one file per kind of job.

mod global;
mod job;
mod pod_monitor;
mod probe;
mod scrape_config;
mod service_monitor;

use std::collections::BTreeMap;

use kube::ResourceExt;
use serde_yaml_ng::{Mapping, Value};

use super::check::{self, ScrapeKind, Verdicts};
use super::crd::{
    PodMonitor, Probe, Prometheus, PrometheusRule, PrometheusSpec, ScrapeConfig, ServiceMonitor,
};
use super::credentials::Assets;
use super::http::TlsAssets;
use super::outputs::Outputs;
use super::rules::{self, RuleFiles};
use super::select::{NamespaceLabels, key};
use super::validate;
use super::yaml;
use global::Global;
pub use global::log_file_in_default_dir;
use job::JobContext;
pub use job::{sharding_rules, user_rule};

/// An object (ServiceMonitor, PodMonitor, PrometheusRule, ...) left out of the config, and
/// why.
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
    /// How many scrape jobs it has (the user's additional ones included).
    pub jobs: usize,
    /// Per kind of scrape object, what is in the config and what was left out.
    pub scrape: BTreeMap<ScrapeKind, Verdicts>,
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
        && spec.pod_monitor_selector.is_none()
        && spec.probe_selector.is_none()
        && spec.scrape_config_selector.is_none()
}

/// What a Prometheus's config is rendered from: every known object of each kind (selection
/// picks the Prometheus's own).
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    /// Namespace labels, for namespace selectors.
    pub namespaces: &'a NamespaceLabels,
    /// ServiceMonitors.
    pub service_monitors: &'a [ServiceMonitor],
    /// PodMonitors.
    pub pod_monitors: &'a [PodMonitor],
    /// Probes.
    pub probes: &'a [Probe],
    /// PrometheusRules.
    pub prometheus_rules: &'a [PrometheusRule],
    /// ScrapeConfigs.
    pub scrape_configs: &'a [ScrapeConfig],
    /// Referenced Secrets and ConfigMaps.
    pub assets: &'a Assets,
}

/// Renders the config and rule files of `prometheus`.
pub fn render(
    prometheus: &Prometheus,
    inputs: &Inputs,
    options: &Options,
) -> Result<Rendered, ConfigError> {
    let error = |reason: String| ConfigError {
        prometheus: key(prometheus),
        reason,
    };
    validate::prometheus(prometheus).map_err(error)?;
    let global = Global::of(prometheus).map_err(error)?;
    let checked = check::check(prometheus, inputs, global.interval_ms).map_err(error)?;
    let rules =
        rules::render(prometheus, inputs.namespaces, inputs.prometheus_rules).map_err(error)?;
    let mut head = Mapping::new();
    head.insert("global".into(), Value::Mapping(global.yaml));
    if let Some(runtime) = global::runtime(&prometheus.spec) {
        head.insert("runtime".into(), runtime);
    }
    if let Some(paths) = rules::rule_file_paths(prometheus, rules.config_maps().len()) {
        let paths = paths.into_iter().map(Value::from).collect();
        head.insert("rule_files".into(), Value::Sequence(paths));
    }
    // Each job is written as soon as it is built, so only one job's tree is alive at a time.
    let mut yaml = to_yaml(&head);
    let jobs_start = yaml.len();
    yaml.push_str("scrape_configs:\n");
    let ctx = JobContext {
        shards: global.shards,
        options,
        spec: &prometheus.spec,
        class: None,
    };
    let mut jobs = 0;
    for accepted in checked.service_monitors {
        jobs += service_monitor::jobs(accepted, &ctx, &mut yaml);
    }
    for accepted in checked.pod_monitors {
        jobs += pod_monitor::jobs(accepted, &ctx, &mut yaml);
    }
    for accepted in checked.probes {
        jobs += probe::jobs(accepted, &ctx, &mut yaml);
    }
    for accepted in checked.scrape_configs {
        jobs += scrape_config::jobs(accepted, &ctx, &mut yaml);
    }
    let namespace = prometheus.namespace().unwrap_or_default();
    let supports_version = |major, minor| supports(&prometheus.spec, major, minor);
    let outputs = Outputs::new(prometheus, &namespace, inputs.assets, &supports_version);
    let additional = outputs
        .additional_scrape_configs(global.shards, options.shard_retention_policy)
        .map_err(error)?;
    jobs += additional.len();
    if !additional.is_empty() {
        yaml::append(&mut yaml, &Value::Sequence(additional));
    }
    if jobs == 0 {
        yaml.truncate(jobs_start);
        yaml.push_str("scrape_configs: []\n");
    }
    let mut tls_assets = checked.tls_assets;
    let mut tail = Mapping::new();
    if let Some(storage) = global::storage(prometheus) {
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
        jobs,
        scrape: checked.verdicts,
        tls_assets,
        rules,
    })
}

/// Whether a Prometheus version (`v3.9.1`, `3.11.0-rc.0`) is below `(major, minor, patch)`;
/// an unparsable version is not.
fn version_below(version: &str, wanted: (u64, u64, u64)) -> bool {
    let mut parts = version.trim_start_matches('v').split('.');
    let number = |p: Option<&str>| {
        let p = p?;
        let digits = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
        p[..digits].parse::<u64>().ok()
    };
    match (number(parts.next()), number(parts.next())) {
        (Some(a), Some(b)) => (a, b, number(parts.next()).unwrap_or(0)) < wanted,
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

pub(super) fn to_yaml<T: serde::Serialize>(value: &T) -> String {
    serde_yaml_ng::to_string(value).expect("a YAML value always serializes")
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

/// Whether the Prometheus's `spec.version` supports a setting that needs `major.minor`:
/// settings it does not support are left out, as the operator leaves them out (unset means
/// the operator's default version, v3.14, which supports all of them).
pub(super) fn supports(spec: &PrometheusSpec, major: u64, minor: u64) -> bool {
    supports_patch(spec, major, minor, 0)
}

/// As [`supports`], for a setting that needs a patch release (`3.11.2`).
pub(super) fn supports_patch(spec: &PrometheusSpec, major: u64, minor: u64, patch: u64) -> bool {
    spec.version
        .as_deref()
        .is_none_or(|v| !version_below(v, (major, minor, patch)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_to_the_patch_release() {
        assert!(version_below("v3.11.1", (3, 11, 2)));
        assert!(!version_below("3.11.2", (3, 11, 2)));
        assert!(!version_below("v3.12.0-rc.0", (3, 11, 2)));
        assert!(version_below("v2.55", (3, 0, 0)));
        assert!(!version_below("latest", (3, 0, 0)));
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
}
