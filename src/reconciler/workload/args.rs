//! The `prometheus` container's arguments, in the operator's order and with its version
//! gates (`BuildCommonPrometheusArgs`, `buildServerArgs`, then the web config file, the
//! compaction flags and `additionalArgs`). A flag the version does not support is left out,
//! as the operator leaves it out.

use crate::reconciler::crd::{Argument, PrometheusSpec};

use super::version::Version;
use super::{CONFIG_OUT_DIR, ENVSUBST_FILE, STORAGE_DIR, WEB_CONFIG_FILE};

/// The flags being built, and the version that gates them.
struct Args<'a> {
    version: &'a Version,
    list: Vec<Argument>,
}

impl Args<'_> {
    fn push(&mut self, name: &str, value: Option<String>) {
        self.list.push(Argument {
            name: name.into(),
            value,
        });
    }

    /// Pushes the flag if the version is at least `min`.
    fn push_from(&mut self, min: (u64, u64, u64), name: &str, value: Option<String>) {
        if self.version.at_least(min.0, min.1, min.2) {
            self.push(name, value);
        }
    }
}

fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// The route prefix (`/` when unset).
pub fn route_prefix(spec: &PrometheusSpec) -> &str {
    set(&spec.route_prefix).unwrap_or("/")
}

/// Joins a route prefix and a path as Go's `path.Clean(prefix + path)` does.
pub fn clean_path(prefix: &str, path: &str) -> String {
    let joined = format!("{prefix}{path}");
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Whether the reloader reloads by signal (`reloadStrategy: ProcessSignal`).
pub fn by_signal(spec: &PrometheusSpec) -> bool {
    spec.reload_strategy.as_deref() == Some("ProcessSignal")
}

/// The server's arguments, `additionalArgs` last; one of those that the operator already
/// sets (or its `no-` negation) is an error, as `BuildArgs` makes it.
pub fn server(spec: &PrometheusSpec, version: &Version) -> Result<Vec<String>, String> {
    let mut a = Args {
        version,
        list: Vec::new(),
    };
    common(spec, &mut a);
    storage_and_rules(spec, &mut a);
    if version.at_least(2, 24, 0) {
        a.push("web.config.file", Some(WEB_CONFIG_FILE.into()));
    }
    if spec.disable_compaction == Some(true) {
        a.push("storage.tsdb.max-block-duration", Some("2h".into()));
        a.push("storage.tsdb.min-block-duration", Some("2h".into()));
        let out_of_order = spec
            .tsdb
            .as_ref()
            .and_then(|t| t.out_of_order_time_window.as_ref());
        if out_of_order.is_some() {
            a.push_from(
                (2, 55, 0),
                "no-storage.tsdb.allow-overlapping-compaction",
                None,
            );
        }
    }
    let clashes = clashes(&a.list, &spec.additional_args);
    if !clashes.is_empty() {
        return Err(format!(
            "spec.additionalArgs: can't set arguments which are already managed by the operator: {}",
            clashes.join(",")
        ));
    }
    Ok(a.list
        .iter()
        .chain(&spec.additional_args)
        .map(|arg| match arg.value.as_deref().filter(|v| !v.is_empty()) {
            Some(value) => format!("--{}={value}", arg.name),
            None => format!("--{}", arg.name),
        })
        .collect())
}

/// The operator's flags that `additional` sets again, directly or negated (`ArgumentsIntersection`).
fn clashes(generated: &[Argument], additional: &[Argument]) -> Vec<String> {
    let has = |name: &str| generated.iter().any(|g| g.name == name);
    additional
        .iter()
        .filter_map(|arg| {
            if has(&arg.name) {
                return Some(arg.name.clone());
            }
            let negated = match arg.name.strip_prefix("no-") {
                Some(plain) => plain.to_string(),
                None => format!("no-{}", arg.name),
            };
            has(&negated).then_some(negated)
        })
        .collect()
}

/// `BuildCommonPrometheusArgs`.
fn common(spec: &PrometheusSpec, a: &mut Args<'_>) {
    a.push(
        "config.file",
        Some(format!("{CONFIG_OUT_DIR}/{ENVSUBST_FILE}")),
    );
    if a.version.numbers.0 == 2 {
        a.push(
            "web.console.templates",
            Some("/etc/prometheus/consoles".into()),
        );
        a.push(
            "web.console.libraries",
            Some("/etc/prometheus/console_libraries".into()),
        );
    }
    if !by_signal(spec) {
        a.push("web.enable-lifecycle", None);
    }
    if let Some(web) = &spec.web {
        if let Some(title) = &web.page_title {
            a.push_from((2, 6, 0), "web.page-title", Some(title.clone()));
        }
        if let Some(max) = web.max_connections {
            a.push("web.max-connections", Some(max.to_string()));
        }
    }
    if spec.enable_remote_write_receiver == Some(true) && a.version.at_least(2, 33, 0) {
        a.push("web.enable-remote-write-receiver", None);
        if !spec.remote_write_receiver_message_versions.is_empty() {
            let versions: Vec<&str> = spec
                .remote_write_receiver_message_versions
                .iter()
                .map(|v| match v.as_str() {
                    "V2.0" => "io.prometheus.write.v2.Request",
                    _ => "prometheus.WriteRequest",
                })
                .collect();
            a.push_from(
                (2, 54, 0),
                "web.remote-write-receiver.accepted-protobuf-messages",
                Some(versions.join(",")),
            );
        }
    }
    let sends_v2 = spec
        .remote_write
        .iter()
        .any(|rw| rw.message_version.as_deref() == Some("V2.0"));
    if sends_v2 && a.version.at_least(2, 54, 0) && !a.version.at_least(3, 4, 0) {
        a.push("enable-feature", Some("metadata-wal-records".into()));
    }
    if spec.enable_otlp_receiver == Some(true) {
        if a.version.numbers.0 >= 3 {
            a.push("web.enable-otlp-receiver", None);
        } else {
            a.push_from(
                (2, 47, 0),
                "enable-feature",
                Some("otlp-write-receiver".into()),
            );
        }
    }
    if !spec.enable_features.is_empty() {
        a.push_from(
            (2, 25, 0),
            "enable-feature",
            Some(spec.enable_features.join(",")),
        );
    }
    let xor2 = spec
        .tsdb
        .as_ref()
        .and_then(|t| t.chunk_encoding.as_ref())
        .and_then(|c| c.floats.as_deref())
        == Some("Xor2");
    if xor2 && !spec.enable_features.iter().any(|f| f == "xor2-encoding") {
        a.push_from((3, 13, 0), "enable-feature", Some("xor2-encoding".into()));
    }
    if let Some(url) = set(&spec.external_url) {
        a.push("web.external-url", Some(url.into()));
    }
    a.push("web.route-prefix", Some(route_prefix(spec).into()));
    if let Some(level) = set(&spec.log_level).filter(|l| *l != "info") {
        a.push("log.level", Some(level.into()));
    }
    if let Some(format) = set(&spec.log_format).filter(|f| *f != "logfmt") {
        a.push_from((2, 6, 0), "log.format", Some(format.into()));
    }
    if spec.listen_local == Some(true) {
        a.push("web.listen-address", Some("127.0.0.1:9090".into()));
    }
}

/// `buildServerArgs`: retention (flags only below 3.11, where it moved into the config
/// file), storage, the admin API, rules, query and TSDB flags.
fn storage_and_rules(spec: &PrometheusSpec, a: &mut Args<'_>) {
    let retention = set(&spec.retention);
    let size = set(&spec.retention_size);
    if !a.version.at_least(2, 7, 0) {
        let time = retention.unwrap_or(super::DEFAULT_RETENTION);
        a.push("storage.tsdb.retention", Some(time.into()));
    } else if !a.version.at_least(3, 11, 0) {
        let time = match (retention, size) {
            (None, None) => Some(super::DEFAULT_RETENTION),
            (time, _) => time,
        };
        if let Some(time) = time {
            a.push("storage.tsdb.retention.time", Some(time.into()));
        }
    }
    if let Some(size) = size
        && !a.version.at_least(3, 11, 0)
    {
        a.push_from((2, 7, 0), "storage.tsdb.retention.size", Some(size.into()));
    }
    a.push("storage.tsdb.path", Some(STORAGE_DIR.into()));
    if spec.enable_admin_api == Some(true) {
        a.push("web.enable-admin-api", None);
    }
    if let Some(alert) = spec.rules.as_ref().and_then(|r| r.alert.as_ref()) {
        for (name, value) in [
            (
                "rules.alert.for-outage-tolerance",
                &alert.for_outage_tolerance,
            ),
            ("rules.alert.for-grace-period", &alert.for_grace_period),
            ("rules.alert.resend-delay", &alert.resend_delay),
        ] {
            if let Some(value) = set(value) {
                a.push_from((2, 4, 0), name, Some(value.into()));
            }
        }
    }
    if let Some(query) = &spec.query {
        if let Some(delta) = &query.lookback_delta {
            a.push("query.lookback-delta", Some(delta.clone()));
        }
        if let Some(max) = query.max_samples.filter(|m| *m > 0) {
            a.push_from((2, 5, 0), "query.max-samples", Some(max.to_string()));
        }
        if let Some(max) = query.max_concurrency.filter(|m| *m > 0) {
            a.push("query.max-concurrency", Some(max.to_string()));
        }
        if let Some(timeout) = &query.timeout {
            a.push("query.timeout", Some(timeout.clone()));
        }
    }
    if spec.allow_overlapping_blocks == Some(true)
        && a.version.at_least(2, 11, 0)
        && !a.version.at_least(2, 39, 0)
    {
        a.push("storage.tsdb.allow-overlapping-blocks", None);
    }
    if let Some(compress) = spec.wal_compression {
        let name = if compress {
            "storage.tsdb.wal-compression"
        } else {
            "no-storage.tsdb.wal-compression"
        };
        a.push_from((2, 11, 0), name, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(yaml: &str) -> Result<Vec<String>, String> {
        let spec: PrometheusSpec = serde_yaml_ng::from_str(yaml).unwrap();
        let version = Version::of(spec.version.as_deref()).unwrap();
        server(&spec, &version)
    }

    #[test]
    fn a_default_prometheus_has_the_operators_flags() {
        assert_eq!(
            args("{}").unwrap(),
            [
                "--config.file=/etc/prometheus/config_out/prometheus.env.yaml",
                "--web.enable-lifecycle",
                "--web.route-prefix=/",
                "--storage.tsdb.path=/prometheus",
                "--web.config.file=/etc/prometheus/web_config/web-config.yaml",
            ]
        );
    }

    #[test]
    fn retention_is_a_flag_below_3_11_only() {
        let old = args("{version: v3.10.0, retentionSize: 10GB}").unwrap();
        assert!(
            !old.iter()
                .any(|a| a.starts_with("--storage.tsdb.retention.time"))
        );
        assert!(old.contains(&"--storage.tsdb.retention.size=10GB".to_string()));
        let older = args("{version: v2.6.0}").unwrap();
        assert!(older.contains(&"--storage.tsdb.retention=24h".to_string()));
        assert!(older.contains(&"--web.console.templates=/etc/prometheus/consoles".to_string()));
        assert!(
            args("{version: v2.50.0}")
                .unwrap()
                .contains(&"--storage.tsdb.retention.time=24h".to_string())
        );
        let new = args("{retention: 30d, retentionSize: 1GB}").unwrap();
        assert!(
            !new.iter()
                .any(|a| a.starts_with("--storage.tsdb.retention"))
        );
    }

    #[test]
    fn additional_args_that_clash_are_refused() {
        let e = args("{additionalArgs: [{name: web.enable-lifecycle}]}").unwrap_err();
        assert!(
            e.ends_with("managed by the operator: web.enable-lifecycle"),
            "{e}"
        );
        let e = args(
            "{walCompression: true, additionalArgs: [{name: no-storage.tsdb.wal-compression}]}",
        )
        .unwrap_err();
        assert!(e.ends_with(": storage.tsdb.wal-compression"), "{e}");
        let ok = args("{additionalArgs: [{name: storage.tsdb.no-lockfile}, {name: query.timeout, value: 1m}]}")
            .unwrap();
        assert_eq!(
            ok[ok.len() - 2..],
            ["--storage.tsdb.no-lockfile", "--query.timeout=1m"]
        );
    }

    #[test]
    fn paths_are_cleaned_as_go_cleans_them() {
        assert_eq!(clean_path("/", "/-/reload"), "/-/reload");
        assert_eq!(clean_path("/prom/", "/-/ready"), "/prom/-/ready");
        assert_eq!(clean_path("prom", "/api/../-/ready"), "/prom/-/ready");
    }
}
