//! The sections that are the Prometheus's own: `global`, `runtime` and `storage`.

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value};

use super::super::crd::{Prometheus, PrometheusSpec};
use super::super::select::key;
use super::super::validate;
use super::{go_float, map, string_map, strings, supports};

/// Defaults of the Prometheus spec.
const DEFAULT_SCRAPE_INTERVAL: &str = "30s";
const DEFAULT_EVALUATION_INTERVAL: &str = "30s";
const DEFAULT_RETENTION: &str = "24h";

/// The limits of a Prometheus: key, global value, enforced upper bound, minimum version.
pub(super) type GlobalLimit = (&'static str, Option<u64>, Option<u64>, (u64, u64));

pub(super) fn global_limits(spec: &PrometheusSpec) -> [GlobalLimit; 6] {
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

/// `storage.tsdb.retention`, which prometheus-operator writes for Prometheus 3.11 and later
/// (its default version is v3.14): `time` is `spec.retention`, or 24h when no retention is
/// set at all; `size` is `spec.retentionSize`.
pub(super) fn storage(prometheus: &Prometheus) -> Option<Value> {
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

/// A log file as the operator places it: a bare file name goes under `/var/log/prometheus`
/// (the volume it mounts there), a path is kept.
fn log_file_path(file: &str) -> String {
    if log_file_in_default_dir(file) {
        format!("/var/log/prometheus/{}", bare_file(file))
    } else {
        file.to_string()
    }
}

/// Whether a log file is a bare file name, which goes in the `log-file` volume the
/// operator mounts at `/var/log/prometheus`.
pub fn log_file_in_default_dir(file: &str) -> bool {
    !file.is_empty() && !bare_file(file).contains('/')
}

/// `file` without its leading `./`s.
fn bare_file(file: &str) -> &str {
    let mut bare = file;
    while let Some(rest) = bare.strip_prefix("./") {
        bare = rest.trim_start_matches('/');
    }
    bare
}

/// The `runtime` section (from Prometheus 2.53).
pub(super) fn runtime(spec: &PrometheusSpec) -> Option<Value> {
    let runtime = spec.runtime.as_ref().filter(|_| supports(spec, 2, 53))?;
    let mut out = Mapping::new();
    if let Some(gogc) = runtime.go_gc {
        out.insert("gogc".into(), gogc.into());
    }
    Some(Value::Mapping(out))
}

/// The `global` section and what the jobs need from it.
pub(super) struct Global {
    /// The section.
    pub yaml: Mapping,
    /// The scrape interval, in milliseconds.
    pub interval_ms: u64,
    /// The number of shards.
    pub shards: u64,
}

impl Global {
    /// The section of `prometheus`, or why its settings are invalid.
    pub fn of(prometheus: &Prometheus) -> Result<Self, String> {
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
        name_schemes(
            spec.name_validation_scheme.as_deref(),
            spec.name_escaping_scheme.as_deref(),
            &supports,
            &mut yaml,
        );
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

/// `metric_name_validation_scheme` (lower-cased, from Prometheus 3.0) and
/// `metric_name_escaping_scheme` (as Prometheus spells it, `AllowUTF8` being `allow-utf-8`,
/// from 3.4; a value the operator does not know is left out, as it leaves it out), in the
/// global section or a job.
pub(super) fn name_schemes(
    validation: Option<&str>,
    escaping: Option<&str>,
    supports: &dyn Fn(u64, u64) -> bool,
    out: &mut Mapping,
) {
    if let Some(scheme) = validation.filter(|_| supports(3, 0)) {
        out.insert(
            "metric_name_validation_scheme".into(),
            scheme.to_ascii_lowercase().into(),
        );
    }
    let escaping = escaping.and_then(|scheme| match scheme {
        "AllowUTF8" => Some("allow-utf-8"),
        "Underscores" => Some("underscores"),
        "Dots" => Some("dots"),
        "Values" => Some("values"),
        _ => None,
    });
    if let Some(scheme) = escaping.filter(|_| supports(3, 4)) {
        out.insert("metric_name_escaping_scheme".into(), scheme.into());
    }
}

#[cfg(test)]
mod tests {
    use super::super::to_yaml;
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
