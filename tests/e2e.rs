//! The whole chain, all real but the kubelet: a ServiceMonitor written to a real
//! kube-apiserver -> promreload-reconciler -> Secret -> a test kubelet projecting it with the
//! AtomicWriter's symlink dance -> promreload (init, then sidecar) -> a real Prometheus (with
//! Kubernetes SD) serving the job, `$(POD_NAME)` and `$(SHARD)` expanded.

mod support;

use std::collections::BTreeMap;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use promreload::reconciler::crd::{Prometheus as PrometheusObject, ServiceMonitor};
use serde_json::json;
use support::cluster::*;
use support::pod::*;
use support::*;

/// Projects Secret `name` into `volume` whenever it changes, as the kubelet does (without
/// its 60-90 s sync delay).
fn test_kubelet(client: kube::Client, ns: &str, name: &str, mut volume: KubeletVolume) {
    let api: Api<Secret> = Api::namespaced(client, ns);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    tokio::spawn(async move {
        let stream = watcher(api, config);
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            let secret = match event {
                Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => s,
                _ => continue,
            };
            let files: BTreeMap<String, Vec<u8>> = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            let refs: Vec<(&str, &[u8])> = files
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect();
            volume.update(&refs);
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_monitor_to_prometheus_through_the_whole_chain() {
    let _turn = serial().await;
    let cluster = Cluster::start();
    let client = cluster.client().await;
    cluster.install_crds(&client).await;
    let ns = unique("e2e");
    namespace(&client, &ns, &[]).await;
    apply::<PrometheusObject>(
        &client,
        &ns,
        &format!("apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: k8s, namespace: {ns}}}\nspec:\n  serviceMonitorSelector:\n    matchLabels: {{team: e2e}}\n"),
    )
    .await;
    let _reconciler = cluster.reconciler(&[("RECONCILER_NAMESPACE", &ns)]);

    let pod = Pod::new();
    let volume = KubeletVolume::new(pod.volume.dir());
    test_kubelet(client.clone(), &ns, "prometheus-k8s", volume);
    let key = pod.volume.key_path(KEY);
    tokio::task::spawn_blocking(move || {
        wait_until(WAIT, "the Secret is projected", || key.exists())
    })
    .await
    .unwrap();

    let env = [
        ("POD_NAME", "prometheus-k8s-0"),
        ("SHARD", "0"),
        (
            "RELOADER_CONFIG_FILE",
            &pod.volume.key_path(KEY).display().to_string(),
        ),
        (
            "RELOADER_CONFIG_ENVSUBST_FILE",
            &pod.output().display().to_string(),
        ),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let pairs = borrow(&env);
    let (status, log) = run_promreload(
        &[pairs.clone(), vec![("RELOADER_WATCH_INTERVAL", "0")]].concat(),
        &[],
    );
    assert!(status.success(), "init container: {log}");

    // The helpers below use blocking HTTP clients: run them where blocking is allowed.
    use tokio::task::block_in_place;
    let prometheus = block_in_place(|| {
        let opts = PromOptions {
            exe: k8s_prometheus_dir().join("prometheus"),
            ..PromOptions::default()
        };
        Prometheus::start_with(free_port(), &pod.output(), opts)
    });
    let reload_url = prometheus.reload_url();
    let env = [
        pairs,
        vec![
            ("RELOADER_RELOAD_URL", &reload_url),
            ("RELOADER_DELAY_INTERVAL", "0"),
        ],
    ]
    .concat();
    let daemon = Daemon::start(&env, &[]);
    block_in_place(|| daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT));

    let job = format!("job_name: serviceMonitor/{ns}/app/0");
    let sm = format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {{name: app, namespace: {ns}, labels: {{team: e2e}}}}\nspec:\n  selector: {{matchLabels: {{app: app}}}}\n  endpoints: [{{port: web}}]\n"
    );
    let start = Instant::now();
    apply::<ServiceMonitor>(&client, &ns, &sm).await;
    block_in_place(|| {
        wait_until(WAIT, "Prometheus serves the new job", || {
            prometheus.loaded_config().contains(&job)
        })
    });
    let appeared = start.elapsed();
    eprintln!(
        "ServiceMonitor written -> job live in Prometheus: {appeared:?} (no kubelet sync delay)"
    );
    let loaded = block_in_place(|| prometheus.loaded_config());
    assert!(
        loaded.contains("prometheus_replica: prometheus-k8s-0"),
        "{loaded}"
    );
    assert!(
        loaded.contains("regex: 0;|.+;.+"),
        "$(SHARD) expanded: {loaded}"
    );
    assert!(!loaded.contains("$("), "{loaded}");

    let start = Instant::now();
    Api::<ServiceMonitor>::namespaced(client.clone(), &ns)
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "other"}}})),
        )
        .await
        .unwrap();
    block_in_place(|| {
        wait_until(WAIT, "the job disappears", || {
            !prometheus.loaded_config().contains(&job)
        })
    });
    eprintln!(
        "ServiceMonitor unselected -> job gone from Prometheus: {:?}",
        start.elapsed()
    );
    block_in_place(|| {
        assert_eq!(daemon.metric("reloader_reloads_failed_total"), 0.0);
        drop((prometheus, daemon));
    });
}
