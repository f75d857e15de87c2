//! The reconciler running Prometheus on the real node (`RECONCILER_RUN_PROMETHEUS`): from a
//! Prometheus object to a Ready Pod through the kubelet's probes, with promreload as its
//! config reloader; a ServiceMonitor live; replicas 1 -> 2 -> 1 through the real
//! StatefulSet controller; a change to the server's flags rolling the Pod; and the
//! Prometheus's deletion taking every object it owned with it (the real garbage collector).

use super::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{Api, ListParams};

const NS: &str = "monitoring";

fn prometheus(spec: &str) -> String {
    format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: k8s, namespace: {NS}}}\nspec:\n  image: {PROMETHEUS_IMAGE}\n  scrapeInterval: 5s\n  serviceMonitorSelector: {{}}\n{spec}"
    )
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
    let node = Node::up(&cluster);
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
    let ip = get("{.status.podIP}");
    let start = Instant::now();
    let service_monitor = format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {{name: web, namespace: {NS}}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  endpoints: [{{port: web}}]\n"
    );
    kubectl(&["apply", "-f", "-"], Some(&service_monitor));
    let live = job_goes_live(&ip, "serviceMonitor/monitoring/web/0", start);
    eprintln!("reconciler: ServiceMonitor written -> job live in its Prometheus: {live:?}");

    // Replicas 1 -> 2 -> 1, through the StatefulSet controller.
    kubectl(&["apply", "-f", "-"], Some(&prometheus("  replicas: 2\n")));
    wait_created_and_ready(&cluster, &node, NS, "prometheus-k8s-1");
    kubectl(&["apply", "-f", "-"], Some(&prometheus("  replicas: 1\n")));
    let one = poll(Duration::from_secs(90), || {
        (pods(&cluster) == ["prometheus-k8s-0"]).then_some(())
    });
    assert!(one.is_some(), "back to one Pod: {:?}", pods(&cluster));

    // A change to the server's flags rolls the Pod.
    let uid = get("{.metadata.uid}");
    kubectl(
        &["apply", "-f", "-"],
        Some(&prometheus("  replicas: 1\n  logLevel: debug\n")),
    );
    let rolled = poll(Duration::from_secs(120), || {
        let args = get("{.spec.containers[?(@.name==\"prometheus\")].args}");
        (get("{.metadata.uid}") != uid && args.contains("--log.level=debug")).then_some(())
    });
    assert!(rolled.is_some(), "the Pod was not rolled: {}", node.log());
    wait_ready_in(&cluster, &node, NS, "prometheus-k8s-0");
    assert_no_restarts(&cluster, NS, "prometheus-k8s-0");

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
