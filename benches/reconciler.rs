//! The reconciler's pure rendering: one Prometheus selecting 1,000 and 10,000 ServiceMonitors
//! (two endpoints each, spread over 50 namespaces), from objects already in memory; and
//! 10,000 where a tenth carry credentials from Secrets (basic auth on one twentieth, a CA from
//! a ConfigMap and a client certificate and key from a Secret on another twentieth, each
//! checked as PEM at every render).

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use promreload::reconciler::objects::Objects;
use promreload::reconciler::render;

const CERT: &str = include_str!("../src/reconciler/testdata/cert.pem");
const KEY: &str = include_str!("../src/reconciler/testdata/key.pem");

/// Multi-document YAML with a Prometheus selecting every ServiceMonitor and `n` of them;
/// with `secured`, a tenth use credentials and TLS material from Secrets and ConfigMaps.
pub fn objects_yaml(n: usize, secured: bool) -> String {
    let mut s = String::from(
        "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {name: k8s, namespace: monitoring}\nspec:\n  serviceMonitorSelector: {}\n  serviceMonitorNamespaceSelector: {}\n  shards: 2\n",
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
        let extra = match i % 20 {
            0 if secured => {
                "    basicAuth: {username: {name: creds, key: user}, password: {name: creds, key: token}}\n"
            }
            10 if secured => {
                "    tlsConfig: {ca: {configMap: {name: ca, key: ca.crt}}, cert: {secret: {name: creds, key: tls.crt}}, keySecret: {name: creds, key: tls.key}}\n"
            }
            _ => "",
        };
        s.push_str(&format!(
            "---\napiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {{name: app-{i}, namespace: team-{}, labels: {{release: k8s}}}}\nspec:\n  selector:\n    matchLabels: {{app: app-{i}}}\n    matchExpressions: [{{key: tier, operator: In, values: [web, api]}}]\n  targetLabels: [team]\n  endpoints:\n  - port: web\n    interval: 30s\n    relabelings: [{{sourceLabels: [__meta_kubernetes_pod_node_name], targetLabel: node_name}}]\n{extra}  - port: admin\n    path: /admin/metrics\n    metricRelabelings: [{{sourceLabels: [__name__], regex: 'go_.*', action: drop}}]\n",
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
    for (n, secured) in [(1_000usize, false), (10_000, false), (10_000, true)] {
        let mut objects = Objects::default();
        objects
            .add_yaml(&objects_yaml(n, secured), "bench")
            .unwrap();
        let prometheus = objects.prometheuses[0].clone();
        let name = if secured {
            format!("{n} ServiceMonitors, a tenth with auth and TLS")
        } else {
            format!("{n} ServiceMonitors")
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let r = render::render(
                    &prometheus,
                    &objects.namespaces,
                    &objects.service_monitors,
                    &objects.prometheus_rules,
                    &objects.assets,
                    &objects.others,
                    &render::Options::default(),
                )
                .unwrap();
                assert_eq!(r.selected.len(), n, "{:?}", r.rejected.first());
                // TLS users are in 5 of the 50 namespaces (i % 20 == 10), 3 files each.
                assert_eq!(r.tls_assets.len(), if secured { 15 } else { 0 });
            })
        });
    }
    group.finish();
}

criterion_group!(benches, reconciler);
criterion_main!(benches);
