//! The reconciler's metrics: one struct, registered once.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::check::ScrapeKind;
use crate::telemetry::KindLabel;

/// Labels naming one Prometheus.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PrometheusLabel {
    /// `namespace/name`.
    pub prometheus: String,
}

/// Labels naming one kind of object the reconciler watches.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabel {
    /// `ServiceMonitor`, `Secret`, ...
    pub resource: String,
}

/// Labels naming one Prometheus and one kind of scrape object.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScrapeKindLabel {
    /// `namespace/name` of the Prometheus.
    pub prometheus: String,
    /// `ServiceMonitor`, `PodMonitor`, `Probe` or `ScrapeConfig`.
    pub kind: String,
}

/// Every metric of the reconciler.
#[derive(Clone, Debug)]
pub struct ReconcilerMetrics {
    registry: Arc<Registry>,
    /// Prometheuses that have per-Prometheus series, so a deleted one's can be removed.
    labelled: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Reconciliations started.
    pub reconciliations: Counter,
    /// Failed reconciliations by error kind.
    pub failures: Family<KindLabel, Counter>,
    /// Duration of reconciliations.
    pub duration: Histogram,
    /// ServiceMonitors in each Prometheus's config.
    pub selected: Family<PrometheusLabel, Gauge>,
    /// ServiceMonitors selected but left out as invalid.
    pub rejected: Family<PrometheusLabel, Gauge>,
    /// Scrape objects in each Prometheus's config, by kind.
    pub scrape_selected: Family<ScrapeKindLabel, Gauge>,
    /// Scrape objects selected but left out as invalid, by kind.
    pub scrape_rejected: Family<ScrapeKindLabel, Gauge>,
    /// PrometheusRules in each Prometheus's rule files.
    pub rules_selected: Family<PrometheusLabel, Gauge>,
    /// PrometheusRules selected but left out as invalid.
    pub rules_rejected: Family<PrometheusLabel, Gauge>,
    /// Secret and ConfigMap writes (changed configs, TLS assets and rule files).
    pub secret_writes: Counter,
    /// Scrape objects whose `Accepted` condition (status binding) was written or removed.
    pub binding_writes: Counter,
    /// StatefulSets, governing Services and web-config Secrets written or deleted.
    pub workload_writes: Counter,
    /// 1 when a Prometheus's config could be generated at its last reconcile, 0 when it was
    /// refused (its Secret keeps the last good config).
    pub config_valid: Family<PrometheusLabel, Gauge>,
    /// 1 once the ServiceMonitor and Namespace caches are synced (reconciling), else 0.
    pub caches_synced: Gauge,
    /// Failed lists and watches by kind of object: its cache is stale meanwhile.
    pub watch_failures: Family<ResourceLabel, Counter>,
}

impl Default for ReconcilerMetrics {
    /// Creates and registers every metric.
    fn default() -> Self {
        let m = Self {
            registry: Arc::new(Registry::default()),
            labelled: Arc::default(),
            reconciliations: Counter::default(),
            failures: Family::default(),
            duration: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            selected: Family::default(),
            rejected: Family::default(),
            scrape_selected: Family::default(),
            scrape_rejected: Family::default(),
            rules_selected: Family::default(),
            rules_rejected: Family::default(),
            secret_writes: Counter::default(),
            binding_writes: Counter::default(),
            workload_writes: Counter::default(),
            config_valid: Family::default(),
            caches_synced: Gauge::default(),
            watch_failures: Family::default(),
        };
        let mut r = Registry::default();
        r.register(
            "promreload_reconciler_reconciliations",
            "Reconciliations started",
            m.reconciliations.clone(),
        );
        r.register(
            "promreload_reconciler_failures",
            "Failed reconciliations by error kind",
            m.failures.clone(),
        );
        r.register(
            "promreload_reconciler_reconcile_duration_seconds",
            "Duration of reconciliations",
            m.duration.clone(),
        );
        r.register(
            "promreload_reconciler_service_monitors_selected",
            "ServiceMonitors in the config",
            m.selected.clone(),
        );
        r.register(
            "promreload_reconciler_service_monitors_rejected",
            "ServiceMonitors left out as invalid",
            m.rejected.clone(),
        );
        r.register(
            "promreload_reconciler_scrape_objects_selected",
            "Scrape objects (ServiceMonitors, PodMonitors, Probes, ScrapeConfigs) in the config, by kind",
            m.scrape_selected.clone(),
        );
        r.register(
            "promreload_reconciler_scrape_objects_rejected",
            "Scrape objects selected but left out as invalid, by kind",
            m.scrape_rejected.clone(),
        );
        r.register(
            "promreload_reconciler_prometheus_rules_selected",
            "PrometheusRules in the rule files",
            m.rules_selected.clone(),
        );
        r.register(
            "promreload_reconciler_prometheus_rules_rejected",
            "PrometheusRules left out as invalid",
            m.rules_rejected.clone(),
        );
        r.register(
            "promreload_reconciler_secret_writes",
            "Config Secrets, TLS-assets Secrets and rule ConfigMaps written",
            m.secret_writes.clone(),
        );
        r.register(
            "promreload_reconciler_binding_writes",
            "Scrape objects whose Accepted condition (status binding) was written or removed",
            m.binding_writes.clone(),
        );
        r.register(
            "promreload_reconciler_workload_writes",
            "StatefulSets, governing Services and web-config Secrets written or deleted (with --run-prometheus)",
            m.workload_writes.clone(),
        );
        r.register(
            "promreload_reconciler_config_valid",
            "1 if the Prometheus's config could be generated at its last reconcile",
            m.config_valid.clone(),
        );
        r.register(
            "promreload_reconciler_caches_synced",
            "1 once the ServiceMonitor and Namespace caches are synced",
            m.caches_synced.clone(),
        );
        r.register(
            "promreload_reconciler_watch_failures",
            "Failed lists and watches by kind of object (its cache is stale meanwhile)",
            m.watch_failures.clone(),
        );
        Self {
            registry: Arc::new(r),
            ..m
        }
    }
}

impl ReconcilerMetrics {
    /// Records that `prometheus` (when given) has per-Prometheus series, and removes those of
    /// every Prometheus not in `live` (deleted ones, or another controller's), so no alert
    /// fires on a stale series.
    pub fn keep_prometheuses(
        &self,
        prometheus: Option<&str>,
        live: &std::collections::HashSet<String>,
    ) {
        let mut labelled = self.labelled.lock().unwrap_or_else(|e| e.into_inner());
        labelled.extend(prometheus.map(str::to_string));
        labelled.retain(|name| {
            let keep = live.contains(name);
            if !keep {
                let label = PrometheusLabel {
                    prometheus: name.clone(),
                };
                self.selected.remove(&label);
                self.rejected.remove(&label);
                self.rules_selected.remove(&label);
                self.rules_rejected.remove(&label);
                self.config_valid.remove(&label);
                for kind in ScrapeKind::ALL {
                    let label = ScrapeKindLabel {
                        prometheus: name.clone(),
                        kind: kind.name().into(),
                    };
                    self.scrape_selected.remove(&label);
                    self.scrape_rejected.remove(&label);
                }
            }
            keep
        });
    }

    /// Sets how many objects of `kind` a Prometheus has in its config and left out (for
    /// ServiceMonitors, also the older per-kind gauges).
    pub fn scrape_objects(
        &self,
        prometheus: &PrometheusLabel,
        kind: ScrapeKind,
        accepted: usize,
        rejected: usize,
    ) {
        let label = ScrapeKindLabel {
            prometheus: prometheus.prometheus.clone(),
            kind: kind.name().into(),
        };
        self.scrape_selected
            .get_or_create(&label)
            .set(accepted as i64);
        self.scrape_rejected
            .get_or_create(&label)
            .set(rejected as i64);
        if kind == ScrapeKind::ServiceMonitor {
            self.selected.get_or_create(prometheus).set(accepted as i64);
            self.rejected.get_or_create(prometheus).set(rejected as i64);
        }
    }

    /// Counts a failed list or watch of `resource`.
    pub fn watch_failed(&self, resource: &str) {
        self.watch_failures
            .get_or_create(&ResourceLabel {
                resource: resource.into(),
            })
            .inc();
    }

    /// Counts a failure of the given kind.
    pub fn failed(&self, kind: &str) {
        self.failures
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        crate::telemetry::encode(&self.registry)
    }
}
