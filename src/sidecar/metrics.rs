//! The sidecar's metrics, on `prometheus-client`: one struct, registered once, handles cloned
//! where they are needed.
//!
//! Names (without prefix) are those of prometheus-config-reloader, so existing dashboards and
//! alerts (kube-prometheus alerts on `reloader_last_reload_successful`) keep working. Counters
//! get their `_total` suffix from the library. Failures are also counted by error kind, never
//! by content or hash.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::telemetry::KindLabel;

/// Every metric of the sidecar.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Reload attempts.
    pub reloads: Counter,
    /// Failed reload attempts.
    pub reloads_failed: Counter,
    /// Failed reload attempts by kind.
    pub reload_errors: Family<KindLabel, Counter>,
    /// 1 if the last reload succeeded.
    pub last_reload_successful: Gauge,
    /// Unix time of the last successful reload.
    pub last_reload_success_timestamp: Gauge<f64, AtomicU64>,
    /// Config apply (render + write) operations.
    pub apply_operations: Counter,
    /// Failed config apply operations.
    pub apply_operations_failed: Counter,
    /// Failed config apply operations by kind.
    pub apply_errors: Family<KindLabel, Counter>,
    /// Unset variables referenced by the last rendered config.
    pub env_expansion_errors: Gauge,
    /// Directories currently watched.
    pub watches: Gauge,
    /// Watch events received.
    pub watch_events: Counter,
    /// Watch errors.
    pub watch_errors: Counter,
    /// Entries of watched directories skipped by the last check (not readable regular files).
    pub watched_files_skipped: Gauge,
    /// Duration of reload requests.
    pub reload_duration: Histogram,
    /// API mode: 1 while the Secret's list and watch work, 0 after an error until they do again.
    pub secret_watch_up: Gauge,
    /// API mode: failed lists and watches of the Secret, by kind.
    pub secret_watch_errors: Family<KindLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric of the file mode.
    pub fn new() -> Self {
        Self::build(false)
    }

    /// Like [`Metrics::new`], plus the API mode's `reloader_secret_watch_*` metrics.
    pub fn with_secret_watch() -> Self {
        Self::build(true)
    }

    fn build(secret_watch: bool) -> Self {
        let mut r = Registry::default();
        let m = Self {
            registry: Arc::new(Registry::default()),
            reloads: Counter::default(),
            reloads_failed: Counter::default(),
            reload_errors: Family::default(),
            last_reload_successful: Gauge::default(),
            last_reload_success_timestamp: Gauge::default(),
            apply_operations: Counter::default(),
            apply_operations_failed: Counter::default(),
            apply_errors: Family::default(),
            env_expansion_errors: Gauge::default(),
            watches: Gauge::default(),
            watch_events: Counter::default(),
            watch_errors: Counter::default(),
            watched_files_skipped: Gauge::default(),
            reload_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            secret_watch_up: Gauge::default(),
            secret_watch_errors: Family::default(),
        };
        r.register("reloader_reloads", "Reload attempts", m.reloads.clone());
        r.register(
            "reloader_reloads_failed",
            "Failed reload attempts",
            m.reloads_failed.clone(),
        );
        r.register(
            "reloader_reload_errors",
            "Failed reload attempts by kind",
            m.reload_errors.clone(),
        );
        r.register(
            "reloader_last_reload_successful",
            "Whether the last reload attempt was successful",
            m.last_reload_successful.clone(),
        );
        r.register(
            "reloader_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful reload",
            m.last_reload_success_timestamp.clone(),
        );
        r.register(
            "reloader_config_apply_operations",
            "Config apply operations",
            m.apply_operations.clone(),
        );
        r.register(
            "reloader_config_apply_operations_failed",
            "Failed config apply operations",
            m.apply_operations_failed.clone(),
        );
        r.register(
            "reloader_config_apply_errors",
            "Failed config apply operations by kind",
            m.apply_errors.clone(),
        );
        r.register(
            "reloader_config_environment_variable_expansion_errors",
            "Unset environment variables referenced by the last rendered config",
            m.env_expansion_errors.clone(),
        );
        r.register("reloader_watches", "Directories watched", m.watches.clone());
        r.register(
            "reloader_watch_events",
            "Watch events received",
            m.watch_events.clone(),
        );
        r.register(
            "reloader_watch_errors",
            "Watch errors",
            m.watch_errors.clone(),
        );
        r.register(
            "reloader_watched_files_skipped",
            "Entries of watched directories skipped: not readable regular files",
            m.watched_files_skipped.clone(),
        );
        r.register(
            "reloader_reload_duration_seconds",
            "Duration of reload requests",
            m.reload_duration.clone(),
        );
        if secret_watch {
            r.register(
                "reloader_secret_watch_up",
                "API mode: 1 while the config Secret's list and watch work",
                m.secret_watch_up.clone(),
            );
            r.register(
                "reloader_secret_watch_errors",
                "API mode: failed lists and watches of the config Secret, by kind",
                m.secret_watch_errors.clone(),
            );
        }
        r.register(
            "reloader_build",
            "Build information",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Self {
            registry: Arc::new(r),
            ..m
        }
    }

    /// Counts a failed apply of the given kind.
    pub fn apply_failed(&self, kind: &str) {
        self.apply_operations_failed.inc();
        self.apply_errors
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// Counts a failed list or watch of the config Secret (API mode).
    pub fn secret_watch_failed(&self, kind: &str) {
        self.secret_watch_up.set(0);
        self.secret_watch_errors
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// Counts a failed reload of the given kind.
    pub fn reload_failed(&self, kind: &str) {
        self.reloads_failed.inc();
        self.last_reload_successful.set(0);
        self.reload_errors
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        crate::telemetry::encode(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_the_go_reloader_names() {
        let m = Metrics::new();
        m.apply_failed("decode");
        m.reload_failed("connect");
        let text = m.encode();
        for name in [
            "reloader_reloads_total",
            "reloader_reloads_failed_total",
            "reloader_last_reload_successful",
            "reloader_last_reload_success_timestamp_seconds",
            "reloader_config_apply_operations_total",
            "reloader_config_apply_operations_failed_total",
            "reloader_config_environment_variable_expansion_errors",
            "reloader_watches",
            "reloader_watch_events_total",
            "reloader_watch_errors_total",
            "reloader_reload_duration_seconds_bucket",
            "reloader_build_info{version=",
            "reloader_config_apply_errors_total{kind=\"decode\"} 1",
            "reloader_reload_errors_total{kind=\"connect\"} 1",
        ] {
            assert!(text.contains(name), "missing {name} in:\n{text}");
        }
    }
}
