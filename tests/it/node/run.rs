//! The reconciler running Prometheus on the real node (`RECONCILER_RUN_PROMETHEUS`): from a
//! Prometheus object to a Ready Pod through the kubelet's probes, with promreload as its
//! config reloader reading the Secret from the API (API mode, the default); ServiceMonitor
//! changes live (p50 and p99 over 20); replicas 1 -> 2 -> 1 through the real
//! StatefulSet controller; shards 1 -> 2 -> 1; a change to the server's flags rolling the
//! Pod; a PVC-backed Prometheus keeping its TSDB across its Pod's deletion; and the
//! Prometheus's deletion taking every object it owned with it (the real garbage collector).

use super::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::api::{Api, ListParams};

const NS: &str = "monitoring";

/// Prometheus `k8s` with `spec` added. Its reloaders reach the API server at the Pod
/// network's gateway port `api` (no kube-proxy here: a cluster's `kubernetes` Service does
/// this), given as the user's container patches, which the reconciler merges by name.
fn prometheus(api: u16, spec: &str) -> String {
    let env = format!(
        "env: [{{name: KUBERNETES_SERVICE_HOST, value: 10.244.77.1}}, {{name: KUBERNETES_SERVICE_PORT, value: \"{api}\"}}]"
    );
    format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: k8s, namespace: {NS}}}\nspec:\n  image: {PROMETHEUS_IMAGE}\n  scrapeInterval: 5s\n  serviceMonitorSelector: {{}}\n  containers: [{{name: config-reloader, {env}}}]\n  initContainers: [{{name: init-config-reloader, {env}}}]\n{spec}"
    )
}

/// The `q` quantile (0 to 1) of `samples`, nearest rank.
fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The names of the Pods of Prometheus `k8s`.
fn pods(cluster: &Cluster) -> Vec<String> {
    let out = kubectl_run(
        cluster,
        &[
            "get",
            "pods",
            "-n",
            NS,
            "-l",
            "operator.prometheus.io/name=k8s",
            "-o",
            "name",
        ],
        None,
    );
    let mut pods: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("pod/"))
        .map(str::to_string)
        .collect();
    pods.sort();
    pods
}

#[test]
fn the_reconciler_runs_prometheus_on_the_node() {
    let _node_turn = one_node_at_a_time();
    let cluster = Cluster::start_own();
    // The kubelet's default sync, as users run it: a change read from a mounted Secret would
    // wait up to a minute for it; API mode does not.
    let node = Node::up_with_sync(&cluster, "1m");
    node.images();
    let kubectl = |args: &[&str], stdin: Option<&str>| kubectl_run(&cluster, args, stdin);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime.block_on(cluster.client());
    runtime.block_on(cluster.install_crds(&client));
    kubectl(&["create", "namespace", NS], None);
    let reconciler = cluster.reconciler(&[
        ("RECONCILER_NAMESPACE", NS),
        ("RECONCILER_RUN_PROMETHEUS", "true"),
        ("RECONCILER_RELOADER_IMAGE", PROMRELOAD_IMAGE),
    ]);
    // The gateway appears with the first Pod, whose init container is already retrying.
    let gateway = forward_once_up("10.244.77.1", ("127.0.0.1", api_port(&cluster)));
    let prometheus = |spec: &str| prometheus(gateway, spec);
    let created = Instant::now();
    kubectl(&["apply", "-f", "-"], Some(&prometheus("  replicas: 1\n")));
    wait_created_and_ready(&cluster, &node, NS, "prometheus-k8s-0");
    eprintln!(
        "reconciler: Prometheus object applied -> its Pod Ready (kubelet probes, promreload inside): {:?}",
        created.elapsed()
    );
    let get = |path: &str| pod_field(&cluster, NS, "prometheus-k8s-0", path);
    for (kind, name) in [
        ("initContainers", "init-config-reloader"),
        ("containers", "config-reloader"),
    ] {
        let image = get(&format!("{{.spec.{kind}[?(@.name==\"{name}\")].image}}"));
        assert_eq!(image, PROMRELOAD_IMAGE, "{name}");
    }
    // API mode (the default): the reloaders read the Secret from the API, which the Role the
    // reconciler created lets the Pod's service account do; the Pod has no config volume.
    let args = get("{.spec.containers[?(@.name==\"config-reloader\")].args}");
    assert!(args.contains("--config-secret=prometheus-k8s"), "{args}");
    assert!(
        !get("{.spec.volumes[*].name}")
            .split_whitespace()
            .any(|v| v == "config")
    );
    let ip = get("{.status.podIP}");
    let start = Instant::now();
    let service_monitor = format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {{name: web, namespace: {NS}}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  endpoints: [{{port: web}}]\n"
    );
    kubectl(&["apply", "-f", "-"], Some(&service_monitor));
    let live = job_goes_live(&ip, "serviceMonitor/monitoring/web/0", start);
    eprintln!("reconciler: first ServiceMonitor written -> job live in its Prometheus: {live:?}");
    // Twenty more, one at a time: each from written to live in Prometheus.
    let mut samples = Vec::new();
    let mut last = Instant::now();
    for i in 0..20 {
        // Each change alone: after the reloader's 1 s delay interval, which coalesces changes
        // that come closer together (measured back to back, each waits for it: p50 1.0 s).
        std::thread::sleep(Duration::from_millis(1200).saturating_sub(last.elapsed()));
        let start = Instant::now();
        let named = service_monitor.replace("name: web,", &format!("name: web-{i},"));
        kubectl(&["apply", "-f", "-"], Some(&named));
        samples.push(job_goes_live(
            &ip,
            &format!("serviceMonitor/monitoring/web-{i}/0"),
            start,
        ));
        last = Instant::now();
    }
    let (p50, p99) = (quantile(&samples, 0.5), quantile(&samples, 0.99));
    eprintln!(
        "reconciler (API mode): ServiceMonitor written -> job live, 20 changes: p50 {p50:?}, p99 {p99:?}"
    );
    assert!(
        p99 < Duration::from_secs(5),
        "API mode does not wait for the kubelet's sync: {samples:?}"
    );

    // Replicas 1 -> 2 -> 1, through the StatefulSet controller.
    kubectl(&["apply", "-f", "-"], Some(&prometheus("  replicas: 2\n")));
    wait_created_and_ready(&cluster, &node, NS, "prometheus-k8s-1");
    kubectl(&["apply", "-f", "-"], Some(&prometheus("  replicas: 1\n")));
    let one = poll(Duration::from_secs(90), || {
        (pods(&cluster) == ["prometheus-k8s-0"]).then_some(())
    });
    assert!(one.is_some(), "back to one Pod: {:?}", pods(&cluster));

    // Shards 1 -> 2 -> 1: a StatefulSet for the new shard, deleted when it is scaled away.
    kubectl(&["apply", "-f", "-"], Some(&prometheus("  shards: 2\n")));
    wait_created_and_ready(&cluster, &node, NS, "prometheus-k8s-shard-1-0");
    kubectl(&["apply", "-f", "-"], Some(&prometheus("  shards: 1\n")));
    let one = poll(Duration::from_secs(90), || {
        (pods(&cluster) == ["prometheus-k8s-0"]).then_some(())
    });
    assert!(one.is_some(), "back to one shard: {:?}", pods(&cluster));

    // A change to the server's flags rolls the Pod.
    let uid = get("{.metadata.uid}");
    kubectl(
        &["apply", "-f", "-"],
        Some(&prometheus("  replicas: 1\n  logLevel: debug\n")),
    );
    // (Polled through the API: the Pod is missing for a moment while it is replaced.)
    let pod = || {
        runtime
            .block_on(Api::<Pod>::namespaced(client.clone(), NS).get_opt("prometheus-k8s-0"))
            .ok()
            .flatten()
    };
    let uid_of = |p: &Pod| p.metadata.uid.clone().unwrap_or_default();
    let rolled = poll(Duration::from_secs(120), || {
        let p = pod()?;
        let args = p.spec.as_ref()?.containers[0]
            .args
            .clone()
            .unwrap_or_default();
        (uid_of(&p) != uid && args.iter().any(|a| a == "--log.level=debug")).then_some(())
    });
    assert!(rolled.is_some(), "the Pod was not rolled: {}", node.log());
    wait_ready_in(&cluster, &node, NS, "prometheus-k8s-0");
    assert_no_restarts(&cluster, NS, "prometheus-k8s-0");

    // With a claim template (a PersistentVolume on the node's disk), the TSDB outlives the
    // Pod: the samples of a self-scrape before the Pod's deletion are still there after.
    let data = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        data.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let volume = format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: prometheus-k8s-data}}\nspec:\n  capacity: {{storage: 1Gi}}\n  accessModes: [ReadWriteOnce]\n  storageClassName: \"\"\n  hostPath: {{path: {}, type: Directory}}\n",
        data.path().display()
    );
    kubectl(&["apply", "-f", "-"], Some(&volume));
    let self_scrape = format!(
        "apiVersion: monitoring.coreos.com/v1alpha1\nkind: ScrapeConfig\nmetadata: {{name: self, namespace: {NS}}}\nspec:\n  staticConfigs: [{{targets: [\"localhost:9090\"]}}]\n"
    );
    kubectl(&["apply", "-f", "-"], Some(&self_scrape));
    let claim = "  scrapeConfigSelector: {}\n  storage:\n    volumeClaimTemplate:\n      spec: {storageClassName: \"\", resources: {requests: {storage: 1Gi}}}\n";
    kubectl(&["apply", "-f", "-"], Some(&prometheus(claim)));
    let ready = |p: &Pod| {
        let conditions = p.status.as_ref().and_then(|s| s.conditions.clone());
        conditions
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    };
    let on_claim = poll(Duration::from_secs(180), || {
        let p = pod()?;
        let claimed = p.spec.as_ref()?.volumes.iter().flatten().any(|v| {
            v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name == "prometheus-k8s-db-prometheus-k8s-0")
        });
        (claimed && ready(&p)).then_some(())
    });
    if on_claim.is_none() {
        let log = reconciler.process.log();
        let tail: Vec<&str> = log.lines().filter(|l| !l.contains("level=debug")).collect();
        panic!(
            "no Ready Pod on the claim:\n{}\n{}\n{}",
            kubectl(
                &["get", "statefulsets,pods,pvc,pv", "-A", "-o", "wide"],
                None
            ),
            kubectl(&["describe", "pod", "-n", NS, "prometheus-k8s-0"], None),
            tail[tail.len().saturating_sub(30)..].join("\n")
        );
    }
    let samples = |ip: &str| -> Option<u64> {
        instant_query(
            ip,
            "count_over_time(up{job=\"scrapeConfig/monitoring/self\"}[1h])",
        )?
        .parse()
        .ok()
    };
    let ip = get("{.status.podIP}");
    let before = poll(Duration::from_secs(60), || samples(&ip).filter(|n| *n >= 3))
        .expect("the self-scrape's samples");
    let uid = get("{.metadata.uid}");
    kubectl(&["delete", "pod", "-n", NS, "prometheus-k8s-0"], None);
    let replaced = poll(Duration::from_secs(120), || {
        pod().filter(|p| uid_of(p) != uid).map(|_| ())
    });
    assert!(replaced.is_some(), "the Pod was not created again");
    wait_ready_in(&cluster, &node, NS, "prometheus-k8s-0");
    let ip = get("{.status.podIP}");
    let after = poll(Duration::from_secs(60), || samples(&ip)).expect("samples after the restart");
    eprintln!("reconciler: self-scrape samples before the Pod's deletion {before}, after {after}");
    assert!(
        after >= before,
        "the TSDB was lost: {before} samples before, {after} after"
    );
    assert!(
        std::fs::read_dir(data.path().join("prometheus-db")).is_ok_and(|mut d| d.next().is_some())
    );

    // Deleting the Prometheus deletes what it owned: the garbage collector does it.
    kubectl(&["delete", "prometheus", "-n", NS, "k8s"], None);
    let gone = poll(Duration::from_secs(120), || {
        runtime.block_on(async {
            let statefulsets = Api::<StatefulSet>::namespaced(client.clone(), NS)
                .list(&ListParams::default())
                .await
                .ok()?;
            let service = Api::<Service>::namespaced(client.clone(), NS)
                .get_opt("prometheus-operated")
                .await
                .ok()?;
            let secrets = Api::<Secret>::namespaced(client.clone(), NS)
                .list(&ListParams::default().labels("operator.prometheus.io/name=k8s"))
                .await
                .ok()?;
            let web = Api::<Secret>::namespaced(client.clone(), NS)
                .get_opt("prometheus-k8s-web-config")
                .await
                .ok()?;
            let empty = statefulsets.items.is_empty()
                && service.is_none()
                && secrets.items.is_empty()
                && web.is_none()
                && pods(&cluster).is_empty();
            empty.then_some(())
        })
    });
    assert!(
        gone.is_some(),
        "objects left after the Prometheus was deleted:\n{}",
        kubectl(&["get", "all,secrets", "-n", NS], None)
    );
    drop(reconciler);
}
