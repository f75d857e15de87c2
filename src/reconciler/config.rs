//! The reconciler's configuration: `RECONCILER_*` environment variables, read with `envy`,
//! validated at start with the variable named in any error.

use std::time::Duration;

use serde::Deserialize;

use crate::config::{LogFormat, parse_duration};

/// Raw variables, before validation.
#[derive(Debug, Deserialize)]
struct Raw {
    #[serde(default = "default_listen")]
    listen_address: String,
    #[serde(default = "default_level")]
    log_level: String,
    #[serde(default = "default_format")]
    log_format: String,
    #[serde(default)]
    namespace: String,
    #[serde(default = "default_resync")]
    resync_interval: String,
    #[serde(default)]
    feature_gates: String,
    #[serde(default)]
    disable_unmanaged_prometheus_configuration: String,
}

fn default_listen() -> String {
    ":8080".into()
}
fn default_level() -> String {
    "info".into()
}
fn default_format() -> String {
    "logfmt".into()
}
fn default_resync() -> String {
    "5m".into()
}

/// The validated configuration of the reconciler.
#[derive(Debug, Clone)]
pub struct ReconcilerConfig {
    /// Address of `/healthz`, `/readyz` and `/metrics`; `None` = no server.
    pub listen_address: Option<String>,
    /// Maximum log level.
    pub log_level: tracing::Level,
    /// Log format.
    pub log_format: LogFormat,
    /// Watch only this namespace (`None` = all).
    pub namespace: Option<String>,
    /// Full resync period.
    pub resync_interval: Duration,
    /// Output choices, as prometheus-operator's feature gates make them.
    pub options: crate::reconciler::render::Options,
}

/// Every variable with its default and meaning (for `--help` and the README).
pub const VARIABLES: &[(&str, &str, &str)] = &[
    (
        "RECONCILER_LISTEN_ADDRESS",
        ":8080",
        "address of /healthz, /readyz, /metrics; empty = no server",
    ),
    ("RECONCILER_LOG_LEVEL", "info", "error, warn, info or debug"),
    ("RECONCILER_LOG_FORMAT", "logfmt", "logfmt or json"),
    (
        "RECONCILER_NAMESPACE",
        "",
        "watch only this namespace; empty = all namespaces",
    ),
    (
        "RECONCILER_RESYNC_INTERVAL",
        "5m",
        "full re-render of every Prometheus, besides watch events",
    ),
    (
        "RECONCILER_FEATURE_GATES",
        "",
        "prometheus-operator's feature gates that change the output: PrometheusShardRetentionPolicy=true|false (default true, as in v0.94)",
    ),
    (
        "RECONCILER_DISABLE_UNMANAGED_PROMETHEUS_CONFIGURATION",
        "false",
        "true: a Prometheus without selectors gets a generated (empty) config instead of being left to the user",
    ),
];

impl ReconcilerConfig {
    /// Reads and validates the `RECONCILER_*` variables.
    pub fn from_env() -> Result<Self, String> {
        let raw: Raw = envy::prefixed("RECONCILER_")
            .from_env()
            .map_err(|e| format!("reading RECONCILER_* variables: {e}"))?;
        let invalid = |var: &str, value: &str, reason: String| {
            format!("invalid value {value:?} for {var}: {reason}")
        };
        let level = crate::config::parse_level(&raw.log_level)
            .map_err(|r| invalid("RECONCILER_LOG_LEVEL", &raw.log_level, r))?;
        let format = crate::config::parse_format(&raw.log_format)
            .map_err(|r| invalid("RECONCILER_LOG_FORMAT", &raw.log_format, r))?;
        let resync = parse_duration(&raw.resync_interval)
            .and_then(|d| {
                if d.is_zero() {
                    Err("must be greater than zero".into())
                } else {
                    Ok(d)
                }
            })
            .map_err(|r| invalid("RECONCILER_RESYNC_INTERVAL", &raw.resync_interval, r))?;
        let mut options =
            crate::reconciler::render::Options::from_feature_gates(&raw.feature_gates)
                .map_err(|r| invalid("RECONCILER_FEATURE_GATES", &raw.feature_gates, r))?;
        let disable = &raw.disable_unmanaged_prometheus_configuration;
        options.disable_unmanaged_configuration = match disable.trim() {
            "" | "false" => false,
            "true" => true,
            _ => {
                return Err(invalid(
                    "RECONCILER_DISABLE_UNMANAGED_PROMETHEUS_CONFIGURATION",
                    disable,
                    "expected true or false".into(),
                ));
            }
        };
        Ok(Self {
            options,
            listen_address: (!raw.listen_address.is_empty()).then_some(raw.listen_address),
            log_level: level,
            log_format: format,
            namespace: (!raw.namespace.is_empty()).then_some(raw.namespace),
            resync_interval: resync,
        })
    }
}
