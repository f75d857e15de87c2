//! The reconciler's pure rendering (check, then render): one Prometheus selecting 1,000 and
//! 10,000 ServiceMonitors (two endpoints each, spread over 50 namespaces), from objects
//! already in memory; 10,000 where a tenth carry credentials from Secrets (basic auth on one
//! twentieth, a CA from a ConfigMap and a client certificate and key from a Secret on another
//! twentieth, each checked as PEM at every render); and 10,000 ServiceMonitors with 10,000
//! PodMonitors of the same shape, 1,000 Probes (two static targets each) and 1,000
//! ScrapeConfigs (static targets, and HTTP, Kubernetes, DNS or Consul discovery in turn), a
//! tenth of each with credentials. Before each group's
//! timing, one render's peak heap (a counting allocator) is printed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use promreload::reconciler::check::ScrapeKind;
use promreload::reconciler::objects::Objects;
use promreload::reconciler::render;

const CERT: &str = include_str!("../src/reconciler/testdata/cert.pem");
const KEY: &str = include_str!("../src/reconciler/testdata/key.pem");

/// The system allocator, counting the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The credentials of the `i`th object's first endpoint, when `secured`: basic auth on one
/// in twenty, a CA and a client pair on another.
fn credentials(i: usize, secured: bool) -> &'static str {
    match i % 20 {
        0 if secured => {
            "    basicAuth: {username: {name: creds, key: user}, password: {name: creds, key: token}}\n"
        }
        10 if secured => {
            "    tlsConfig: {ca: {configMap: {name: ca, key: ca.crt}}, cert: {secret: {name: creds, key: tls.crt}}, keySecret: {name: creds, key: tls.key}}\n"
        }
        _ => "",
    }
}

/// Multi-document YAML with a Prometheus selecting every ServiceMonitor and PodMonitor, `n`
/// ServiceMonitors and `pod_monitors` PodMonitors; with `secured`, a tenth use credentials
/// and TLS material from Secrets and ConfigMaps.
pub fn objects_yaml(
    n: usize,
    pod_monitors: usize,
    probes: usize,
    scrape_configs: usize,
    secured: bool,
) -> String {
    let mut s = String::from(
        "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {name: k8s, namespace: monitoring}\nspec:\n  serviceMonitorSelector: {}\n  serviceMonitorNamespaceSelector: {}\n  podMonitorSelector: {}\n  podMonitorNamespaceSelector: {}\n  probeSelector: {}\n  probeNamespaceSelector: {}\n  scrapeConfigSelector: {}\n  scrapeConfigNamespaceSelector: {}\n  shards: 2\n",
    );
    let pem = |p: &str| serde_json::to_string(p).unwrap();
    for team in 0..50 {
        if secured {
            s.push_str(&format!(
                "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: creds, namespace: team-{team}}}\nstringData: {{user: bot, token: t0k, tls.crt: {}, tls.key: {}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: ca, namespace: team-{team}}}\ndata: {{ca.crt: {}}}\n",
                pem(CERT),
                pem(KEY),
                pem(CERT)
            ));
        }
    }
    for i in 0..n {
        let extra = credentials(i, secured);
        s.push_str(&format!(
            "---\napiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {{name: app-{i}, namespace: team-{}, labels: {{release: k8s}}}}\nspec:\n  selector:\n    matchLabels: {{app: app-{i}}}\n    matchExpressions: [{{key: tier, operator: In, values: [web, api]}}]\n  targetLabels: [team]\n  endpoints:\n  - port: web\n    interval: 30s\n    relabelings: [{{sourceLabels: [__meta_kubernetes_pod_node_name], targetLabel: node_name}}]\n{extra}  - port: admin\n    path: /admin/metrics\n    metricRelabelings: [{{sourceLabels: [__name__], regex: 'go_.*', action: drop}}]\n",
            i % 50
        ));
    }
    for i in 0..pod_monitors {
        let extra = credentials(i, secured);
        s.push_str(&format!(
            "---\napiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {{name: pods-{i}, namespace: team-{}}}\nspec:\n  selector:\n    matchLabels: {{app: pods-{i}}}\n  podTargetLabels: [team]\n  podMetricsEndpoints:\n  - port: web\n    interval: 30s\n    relabelings: [{{sourceLabels: [__meta_kubernetes_pod_node_name], targetLabel: node_name}}]\n{extra}  - port: admin\n    path: /admin/metrics\n    metricRelabelings: [{{sourceLabels: [__name__], regex: 'go_.*', action: drop}}]\n",
            i % 50
        ));
    }
    for i in 0..probes {
        let auth = if secured && i % 10 == 0 {
            "  basicAuth: {username: {name: creds, key: user}, password: {name: creds, key: token}}\n"
        } else {
            ""
        };
        s.push_str(&format!(
            "---\napiVersion: monitoring.coreos.com/v1\nkind: Probe\nmetadata: {{name: probe-{i}, namespace: team-{}}}\nspec:\n  prober: {{url: 'blackbox:9115'}}\n  module: http_2xx\n  targets: {{staticConfig: {{static: ['https://site-{i}.example', 'https://site-{i}.example/health'], labels: {{team: t}}}}}}\n{auth}",
            i % 50
        ));
    }
    for i in 0..scrape_configs {
        let auth = if secured && i % 10 == 0 {
            "  basicAuth: {username: {name: creds, key: user}, password: {name: creds, key: token}}\n"
        } else {
            ""
        };
        let discovery = match i % 5 {
            0 => format!("  httpSDConfigs: [{{url: 'https://sd-{i}.example/targets', authorization: {{credentials: {{name: creds, key: token}}}}}}]\n"),
            1 => "  kubernetesSDConfigs: [{role: Pod, namespaces: {names: [apps]}, selectors: [{role: Pod, label: 'app=web'}]}]\n".to_string(),
            2 => format!("  dnsSDConfigs: [{{names: ['_metrics._tcp.svc-{i}.example']}}]\n"),
            3 => "  consulSDConfigs: [{server: 'consul.example:8500', tokenRef: {name: creds, key: token}, services: [web]}]\n".to_string(),
            _ => String::new(),
        };
        s.push_str(&format!(
            "---\napiVersion: monitoring.coreos.com/v1alpha1\nkind: ScrapeConfig\nmetadata: {{name: external-{i}, namespace: team-{}}}\nspec:\n  staticConfigs: [{{targets: ['db-{i}.example:9187'], labels: {{env: prod}}}}]\n  relabelings: [{{sourceLabels: [__address__], targetLabel: host}}]\n{discovery}{auth}",
            i % 50
        ));
    }
    s
}

fn reconciler(c: &mut Criterion) {
    let mut group = c.benchmark_group("reconciler render");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));
    for (n, pod_monitors, probes, scrape_configs, secured) in [
        (1_000usize, 0usize, 0usize, 0usize, false),
        (10_000, 0, 0, 0, false),
        (10_000, 0, 0, 0, true),
        (10_000, 10_000, 1_000, 1_000, true),
    ] {
        let mut objects = Objects::default();
        let yaml = objects_yaml(n, pod_monitors, probes, scrape_configs, secured);
        objects.add_yaml(&yaml, "bench").unwrap();
        let prometheus = objects.prometheuses[0].clone();
        let mut name = format!("{n} ServiceMonitors");
        if pod_monitors > 0 {
            name.push_str(&format!(
                ", {pod_monitors} PodMonitors, {probes} Probes and {scrape_configs} ScrapeConfigs"
            ));
        }
        if secured {
            name.push_str(", a tenth with auth and TLS");
        }
        let render_once = || {
            let r = render::render(&prometheus, &objects.inputs(), &render::Options::default())
                .unwrap();
            let sms = &r.scrape[&ScrapeKind::ServiceMonitor];
            assert_eq!(sms.accepted.len(), n, "{:?}", sms.rejected.first());
            let pms = &r.scrape[&ScrapeKind::PodMonitor];
            assert_eq!(
                pms.accepted.len(),
                pod_monitors,
                "{:?}",
                pms.rejected.first()
            );
            let accepted = &r.scrape[&ScrapeKind::Probe];
            assert_eq!(
                accepted.accepted.len(),
                probes,
                "{:?}",
                accepted.rejected.first()
            );
            let scs = &r.scrape[&ScrapeKind::ScrapeConfig];
            assert_eq!(
                scs.accepted.len(),
                scrape_configs,
                "{:?}",
                scs.rejected.first()
            );
            assert_eq!(r.jobs, 2 * (n + pod_monitors) + probes + scrape_configs);
            // TLS users are in 5 of the 50 namespaces (i % 20 == 10), 3 files each.
            assert_eq!(r.tls_assets.len(), if secured { 15 } else { 0 });
            r
        };
        let before = IN_USE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let config = render_once().yaml.len();
        let peak = PEAK.load(Ordering::Relaxed) - before;
        eprintln!(
            "{name}: one render's peak heap above the objects: {:.1} MiB (config {:.1} MiB)",
            peak as f64 / (1 << 20) as f64,
            config as f64 / (1 << 20) as f64
        );
        group.bench_function(name, |b| b.iter(render_once));
    }
    group.finish();
}

criterion_group!(benches, reconciler);
criterion_main!(benches);
