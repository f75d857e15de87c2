//! kube-prometheus-stack (the real chart, 88.5.3, in `../shared/charts`), rendered by the real
//! Helm v4 (`scripts/helm.sh`) with the reloader image values set to ours, the way a user
//! switches. The real operator runs with the arguments the chart gives its Deployment (less
//! its in-cluster web server's TLS files), and the objects it manages are applied as the chart
//! renders them: the Prometheus and the Alertmanager, their ServiceMonitors, PrometheusRules,
//! ServiceAccounts and the Alertmanager's config Secret. Every Pod that carries the reloader
//! becomes Ready, and reloads on a change.
//!
//! No registry is reachable here, so the images the chart names for Prometheus and
//! Alertmanager are local ones imported under those names: the Prometheus built from Go
//! modules, and Debian's Alertmanager. Debian's is v0.25, so one more value is set,
//! `alertmanager.alertmanagerSpec.version`, or the operator would pass it v0.34's flags.

use std::time::Duration;

use serde::Deserialize;

use super::*;

const RELEASE: &str = "kps";
const NS: &str = "monitoring";

/// The chart, beside the clone in `../shared`; `None` (the test skips) on a plain clone,
/// except in CI, where it must be there.
fn chart() -> Option<PathBuf> {
    let chart = repo().join("../shared/charts/kube-prometheus-stack");
    if chart.join("Chart.yaml").exists() {
        return Some(chart);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs with ../shared beside the clone: {} is missing",
        chart.display()
    );
    eprintln!("skipped: no ../shared/charts/kube-prometheus-stack beside this clone");
    None
}

/// The chart rendered with the values a kube-prometheus-stack user sets to switch (the
/// README's), as YAML documents.
///
/// A subchart missing from `charts/` (the copy in `../shared` may hold only `crds`) would stop
/// Helm before it renders anything: such a subchart gets an empty stand-in in a copy of the
/// chart, and its condition is set false. The subcharts only add the exporters and Grafana;
/// the objects the operator manages come from the chart's own templates.
fn render(chart: &Path) -> (Vec<Value>, Vec<String>) {
    let copy = tempfile::tempdir().unwrap();
    let ok = Command::new("cp")
        .arg("-r")
        .arg(chart)
        .arg(copy.path())
        .status()
        .unwrap()
        .success();
    assert!(ok, "copy the chart");
    let chart = copy.path().join("kube-prometheus-stack");
    let _ = Command::new("chmod")
        .arg("-R")
        .arg("u+w")
        .arg(&chart)
        .status();
    let meta: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(chart.join("Chart.yaml")).unwrap())
            .unwrap();
    let mut stood_in = Vec::new();
    let mut values = Vec::new();
    for dep in meta["dependencies"].as_sequence().unwrap() {
        let dep_name = dep["name"].as_str().unwrap();
        let dir = chart.join("charts").join(dep_name);
        if dir.exists() {
            continue;
        }
        // A version that meets the constraint ("0.12.*" -> "0.12.0").
        let version = dep["version"].as_str().unwrap().replace('*', "0");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("Chart.yaml"),
            format!("apiVersion: v2\nname: {dep_name}\nversion: {version}\n"),
        )
        .unwrap();
        if let Some(condition) = dep["condition"].as_str() {
            values.extend(["--set".to_string(), format!("{condition}=false")]);
        }
        stood_in.push(dep_name.to_string());
    }
    let (registry, rest) = PROMRELOAD_IMAGE.split_once('/').unwrap();
    let (repository, tag) = rest.rsplit_once(':').unwrap();
    let out = Command::new(built("helm.sh"))
        .args(["template", RELEASE])
        .arg(&chart)
        .args(["--namespace", NS])
        .args([
            "--set",
            &format!("prometheusOperator.prometheusConfigReloader.image.registry={registry}"),
            "--set",
            &format!("prometheusOperator.prometheusConfigReloader.image.repository={repository}"),
            "--set",
            &format!("prometheusOperator.prometheusConfigReloader.image.tag={tag}"),
            "--set",
            "alertmanager.alertmanagerSpec.version=v0.25.0",
        ])
        .args(&values)
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let docs = serde_yaml_ng::Deserializer::from_str(&text)
        .filter_map(|doc| Value::deserialize(doc).ok())
        .filter(|v| !v.is_null())
        .collect();
    (docs, stood_in)
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

#[test]
fn kube_prometheus_stack_with_our_reloader_image() {
    let Some(chart) = chart() else {
        return;
    };
    let (docs, stood_in) = render(&chart);
    if !stood_in.is_empty() {
        eprintln!(
            "stack: subcharts missing from the chart's copy, stood in for and disabled: {stood_in:?}"
        );
    }
    let of = |k: &'static str| docs.iter().filter(move |d| kind(d) == k);
    let prometheus = of("Prometheus").next().expect("the chart's Prometheus");
    let alertmanager = of("Alertmanager").next().expect("the chart's Alertmanager");
    // The operator as the chart runs it: its Deployment's args, less the in-cluster web
    // server's (TLS files mounted from a Secret).
    let deployment = of("Deployment")
        .find(|d| name(d).ends_with("-operator"))
        .expect("the chart's operator Deployment");
    let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .filter(|a| !a.starts_with("--web."))
        .collect();
    assert!(
        args.contains(&format!("--prometheus-config-reloader={PROMRELOAD_IMAGE}")),
        "{args:?}"
    );

    let _node_turn = one_node_at_a_time();
    let cluster = Cluster::start_own();
    let node = Node::up(&cluster);
    node.images();
    let image_of = |doc: &Value| doc["spec"]["image"].as_str().unwrap().to_string();
    let prometheus_image = image_of(prometheus);
    let alertmanager_image = image_of(alertmanager);
    node.prometheus_image(&prometheus_image);
    node.alertmanager_image(&alertmanager_image);
    let kubectl = |args: &[&str], stdin: Option<&str>| kubectl_run(&cluster, args, stdin);
    install_operator_crds(&cluster);
    kubectl(&["create", "namespace", NS], None);
    let _operator = cluster.operator_args(&args);
    let managed: Vec<String> = docs
        .iter()
        .filter(|d| {
            matches!(
                kind(d),
                "Prometheus"
                    | "Alertmanager"
                    | "ServiceMonitor"
                    | "PrometheusRule"
                    | "ServiceAccount"
                    | "Secret"
            )
        })
        .map(|d| serde_yaml_ng::to_string(d).unwrap())
        .collect();
    kubectl(
        &["apply", "--server-side", "-f", "-"],
        Some(&managed.join("---\n")),
    );

    let prometheus_pod = format!("prometheus-{}-0", name(prometheus));
    let alertmanager_pod = format!("alertmanager-{}-0", name(alertmanager));
    for pod in [&prometheus_pod, &alertmanager_pod] {
        wait_created_and_ready(&cluster, &node, NS, pod);
        let image = pod_field(
            &cluster,
            NS,
            pod,
            "{.spec.containers[?(@.name==\"config-reloader\")].image}",
        );
        assert_eq!(image, PROMRELOAD_IMAGE, "{pod}");
    }

    // Prometheus: the chart's rules are loaded from the watched rule directories, and a new
    // ServiceMonitor the chart's selector takes becomes a job.
    let ip = pod_field(&cluster, NS, &prometheus_pod, "{.status.podIP}");
    let rules = poll(Duration::from_secs(60), || {
        let body = reqwest::blocking::get(format!("http://{ip}:9090/api/v1/rules"))
            .ok()?
            .text()
            .ok()?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let groups = v["data"]["groups"].as_array()?.len();
        (groups > 0).then_some(groups)
    })
    .expect("the chart's PrometheusRules reach Prometheus");
    eprintln!("stack: {rules} rule groups of the chart loaded");
    let service_monitor = format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {{name: web, namespace: {NS}, labels: {{release: {RELEASE}}}}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  endpoints: [{{port: web}}]\n"
    );
    let start = std::time::Instant::now();
    kubectl(&["apply", "-f", "-"], Some(&service_monitor));
    let live = job_goes_live(&ip, &format!("serviceMonitor/{NS}/web/0"), start);
    eprintln!("stack: ServiceMonitor -> job live in the chart's Prometheus: {live:?}");

    // Alertmanager: a change to the chart's config Secret is reloaded.
    let am_ip = pod_field(&cluster, NS, &alertmanager_pod, "{.status.podIP}");
    let hash = || {
        let text = reqwest::blocking::get(format!("http://{am_ip}:9093/metrics"))
            .ok()?
            .text()
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("alertmanager_config_hash "))
            .map(str::to_string)
    };
    let before = poll(Duration::from_secs(30), hash).expect("Alertmanager's metrics");
    let secret = of("Secret")
        .find(|d| name(d).starts_with("alertmanager-"))
        .expect("the chart's Alertmanager config Secret");
    let config = "route: {receiver: 'null'}\nreceivers: [{name: 'null'}, {name: changed}]\n";
    let patch = serde_json::json!({"stringData": {"alertmanager.yaml": config}}).to_string();
    kubectl(
        &[
            "patch",
            "secret",
            "-n",
            NS,
            name(secret),
            "--type=merge",
            "-p",
            &patch,
        ],
        None,
    );
    poll(Duration::from_secs(90), || hash().filter(|h| *h != before))
        .expect("the config change reaches the chart's Alertmanager");
    for pod in [&prometheus_pod, &alertmanager_pod] {
        assert_no_restarts(&cluster, NS, pod);
    }
}
