//! The reconciler's pure rendering: one Prometheus selecting 1,000 and 10,000 ServiceMonitors
//! (two endpoints each, spread over 50 namespaces), from objects already in memory.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use promreload::reconciler::objects::Objects;
use promreload::reconciler::render;

/// Multi-document YAML with a Prometheus selecting every ServiceMonitor and `n` of them.
pub fn objects_yaml(n: usize) -> String {
    let mut s = String::from(
        "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {name: k8s, namespace: monitoring}\nspec:\n  serviceMonitorSelector: {}\n  serviceMonitorNamespaceSelector: {}\n  shards: 2\n",
    );
    for i in 0..n {
        s.push_str(&format!(
            "---\napiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {{name: app-{i}, namespace: team-{}, labels: {{release: k8s}}}}\nspec:\n  selector:\n    matchLabels: {{app: app-{i}}}\n    matchExpressions: [{{key: tier, operator: In, values: [web, api]}}]\n  targetLabels: [team]\n  endpoints:\n  - port: web\n    interval: 30s\n    relabelings: [{{sourceLabels: [__meta_kubernetes_pod_node_name], targetLabel: node_name}}]\n  - port: admin\n    path: /admin/metrics\n    metricRelabelings: [{{sourceLabels: [__name__], regex: 'go_.*', action: drop}}]\n",
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
    for n in [1_000usize, 10_000] {
        let mut objects = Objects::default();
        objects.add_yaml(&objects_yaml(n), "bench").unwrap();
        let prometheus = objects.prometheuses[0].clone();
        group.bench_function(format!("{n} ServiceMonitors"), |b| {
            b.iter(|| {
                let r = render::render(
                    &prometheus,
                    &objects.namespaces,
                    &objects.service_monitors,
                    &objects.assets,
                    &render::Options::default(),
                )
                .unwrap();
                assert_eq!(r.selected.len(), n);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, reconciler);
criterion_main!(benches);
