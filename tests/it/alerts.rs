//! The alerts of `deploy/monitoring/prometheusrule.yaml`, unit-tested with `promtool test
//! rules` (`tests/alerts/promreload.test.yaml`): each alert firing and not firing, and
//! kube-prometheus's `ConfigReloaderSidecarErrors`, read unchanged from prometheus-operator's
//! mixin in its Go module (fetched by `scripts/operator.sh`), firing on our metric. Every
//! alert has a test and a runbook section in the README.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::cluster::k8s_prometheus_dir;
use serde_yaml_ng::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Go's module cache (where `scripts/operator.sh` fetched the operator and its modules).
fn gomodcache() -> std::path::PathBuf {
    let out = Command::new("go")
        .args(["env", "GOMODCACHE"])
        .output()
        .expect("go env");
    String::from_utf8(out.stdout).unwrap().trim().into()
}

/// prometheus-operator's own `ConfigReloaderSidecarErrors`, from its module's mixin.
fn upstream_config_reloader_alert() -> Value {
    let path = gomodcache().join(
        "github.com/prometheus-operator/prometheus-operator@v0.94.1/example/mixin/alerts.yaml",
    );
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/operator.sh fetches it)", path.display()));
    let mixin: Value = serde_yaml_ng::from_str(&text).unwrap();
    mixin["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .find(|r| r["alert"].as_str() == Some("ConfigReloaderSidecarErrors"))
        .expect("the mixin has ConfigReloaderSidecarErrors")
        .clone()
}

fn our_rules() -> Value {
    let text =
        std::fs::read_to_string(repo().join("deploy/monitoring/prometheusrule.yaml")).unwrap();
    let rule: Value = serde_yaml_ng::from_str(&text).unwrap();
    rule["spec"].clone()
}

fn alert_names(groups: &Value) -> Vec<String> {
    groups["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn every_alert_fires_and_stays_quiet_as_its_unit_tests_say() {
    let dir = tempfile::tempdir().unwrap();
    let mut rules = our_rules();
    let upstream = serde_yaml_ng::from_str::<Value>("{name: kube-prometheus, rules: []}").unwrap();
    let groups = rules["groups"].as_sequence_mut().unwrap();
    groups.push(upstream);
    groups
        .last_mut()
        .unwrap()
        .get_mut("rules")
        .unwrap()
        .as_sequence_mut()
        .unwrap()
        .push(upstream_config_reloader_alert());
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_yaml_ng::to_string(&rules).unwrap(),
    )
    .unwrap();
    let tests = std::fs::read_to_string(repo().join("tests/alerts/promreload.test.yaml")).unwrap();
    std::fs::write(dir.path().join("promreload.test.yaml"), &tests).unwrap();
    let out = Command::new(k8s_prometheus_dir().join("promtool"))
        .args(["test", "rules", "promreload.test.yaml"])
        .current_dir(dir.path())
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool test rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for alert in alert_names(&our_rules()) {
        let firing = format!("alertname: {alert}\n    exp_alerts:\n    - exp_labels");
        let quiet = format!("alertname: {alert}, exp_alerts: []");
        assert!(tests.contains(&firing), "{alert} has a firing test");
        assert!(tests.contains(&quiet), "{alert} has a quiet test");
        assert!(
            readme.contains(&format!("### {alert}\n")),
            "{alert} has a runbook section in the README"
        );
    }
}

/// Prometheus's own PromQL test suite (`promql/promqltest/testdata` in its Go module, fetched
/// with prometheus-operator's): every `eval` expression parses with the reconciler's check,
/// except those of syntax it does not know, which are only in the files of feature-flagged
/// syntax and in the lines using the histogram trim operators. A crate upgrade that learns
/// them, or one that loses anything else, fails here.
#[test]
fn rule_expressions_parse_like_prometheus_on_its_own_test_suite() {
    use promreload::reconciler::rules::check_expression;
    let dir =
        gomodcache().join("github.com/prometheus/prometheus@v0.314.0/promql/promqltest/testdata");
    let known_unsupported = [
        "duration_expression.test",
        "extended_vectors.test",
        "info.test",
    ];
    let (mut parsed, mut unsupported) = (0, 0);
    let mut wrong = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let expr = if let Some(rest) = line.strip_prefix("eval instant at ") {
                rest.split_once(' ').map(|(_, e)| e)
            } else if let Some(rest) = line.strip_prefix("eval range from ") {
                // `<start> to <end> step <step> <expr>`
                rest.splitn(6, ' ').nth(5)
            } else {
                None
            };
            let Some(expr) = expr else { continue };
            match check_expression(expr) {
                Ok(()) => parsed += 1,
                Err(_) if known_unsupported.contains(&file.as_str()) => unsupported += 1,
                Err(_) if expr.contains("</") || expr.contains(">/") => unsupported += 1,
                Err(e) => wrong.push(format!("{file}: {expr}: {e}")),
            }
        }
    }
    eprintln!("{parsed} expressions parse, {unsupported} use syntax the check does not know");
    assert!(parsed > 1500, "{parsed}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The rules of prometheus-operator's own mixin and of deploy/monitoring render with no
/// rejection.
#[test]
fn real_world_rule_files_are_accepted() {
    use promreload::reconciler::crd::{Prometheus, PrometheusRule};
    use promreload::reconciler::rules;
    let mixin = gomodcache().join(
        "github.com/prometheus-operator/prometheus-operator@v0.94.1/example/mixin/alerts.yaml",
    );
    let ours =
        std::fs::read_to_string(repo().join("deploy/monitoring/prometheusrule.yaml")).unwrap();
    let mut ours: PrometheusRule = serde_yaml_ng::from_str(&ours).unwrap();
    let mixin_spec = serde_yaml_ng::from_str(&std::fs::read_to_string(mixin).unwrap()).unwrap();
    let mut mixin = PrometheusRule::new("mixin", mixin_spec);
    for rule in [&mut ours, &mut mixin] {
        rule.metadata.namespace = Some("monitoring".into());
        rule.metadata.labels = Some([("prometheus".to_string(), "k8s".to_string())].into());
    }
    let prometheus: Prometheus = serde_yaml_ng::from_str(
        "{apiVersion: monitoring.coreos.com/v1, kind: Prometheus, metadata: {name: k8s, namespace: monitoring}, spec: {ruleSelector: {matchLabels: {prometheus: k8s}}, enforcedNamespaceLabel: namespace}}",
    )
    .unwrap();
    let out = rules::render(&prometheus, &Default::default(), &[ours, mixin]).unwrap();
    assert_eq!(out.rejected, [], "nothing rejected");
    assert_eq!(out.selected, ["monitoring/mixin", "monitoring/promreload"]);
}

/// Every panel of the Grafana dashboard (`deploy/monitoring/promreload-dashboard.json`) is
/// queried on a real Prometheus that scrapes a running promreload and promreload-reconciler
/// (with a Prometheus object, a refused one, a ServiceMonitor, a good and a bad
/// PrometheusRule, and a refused sidecar input, so every series exists): each expression
/// must parse and return data. The ConfigMap `kubectl kustomize deploy/monitoring` makes of
/// it holds the same JSON, labelled for Grafana's sidecar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_panel_returns_data_from_real_promreload_metrics() {
    use crate::support::cluster::{Cluster, apply, kubectl_run, namespace, serial, unique};
    use crate::support::{Daemon, PromOptions, Prometheus, free_port, run_promreload, wait_until};
    use promreload::reconciler::crd::{
        Prometheus as PrometheusObject, PrometheusRule, ServiceMonitor,
    };
    use tokio::task::block_in_place;

    let json = std::fs::read_to_string(repo().join("deploy/monitoring/promreload-dashboard.json"))
        .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&json).unwrap();

    let _turn = serial().await;
    let cluster = Cluster::start();
    let client = cluster.client().await;
    cluster.install_crds(&client).await;
    let kustomized = kubectl_run(
        &cluster,
        &[
            "kustomize",
            repo().join("deploy/monitoring").to_str().unwrap(),
        ],
        None,
    );
    let config_map = serde_yaml_ng::Deserializer::from_str(&kustomized)
        .map(|doc| <Value as serde::Deserialize>::deserialize(doc).unwrap())
        .find(|doc| doc["kind"].as_str() == Some("ConfigMap"))
        .expect("a ConfigMap");
    assert_eq!(
        config_map["metadata"]["labels"]["grafana_dashboard"].as_str(),
        Some("1")
    );
    assert_eq!(
        config_map["data"]["promreload-dashboard.json"].as_str(),
        Some(json.as_str())
    );

    let ns = unique("dashboard");
    namespace(&client, &ns, &[]).await;
    let objects = [
        format!(
            "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: k8s, namespace: {ns}}}\nspec: {{serviceMonitorSelector: {{}}, ruleSelector: {{}}}}\n"
        ),
        format!(
            "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: refused, namespace: {ns}}}\nspec: {{serviceMonitorSelector: {{}}, scrapeInterval: 10s, scrapeTimeout: 1m}}\n"
        ),
    ];
    for p in &objects {
        apply::<PrometheusObject>(&client, &ns, p).await;
    }
    apply::<ServiceMonitor>(&client, &ns, &format!("apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {{name: web, namespace: {ns}}}\nspec: {{selector: {{matchLabels: {{app: web}}}}, endpoints: [{{port: web}}]}}\n")).await;
    for (name, expr) in [("good", "up == 0"), ("bad", "sum(up")] {
        apply::<PrometheusRule>(&client, &ns, &format!("apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{groups: [{{name: g, rules: [{{alert: A, expr: '{expr}'}}]}}]}}\n")).await;
    }
    let reconciler = cluster.reconciler(&[("RECONCILER_NAMESPACE", &ns)]);
    let reconciler_address = reconciler.admin.trim_start_matches("http://").to_string();

    // The sidecar's Prometheus scrapes the sidecar and the reconciler every second.
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (
        dir.path().join("prometheus.yaml"),
        dir.path().join("out.yaml"),
    );
    let sidecar_address = format!("127.0.0.1:{}", free_port());
    let config = |interval: &str| {
        format!(
            "global: {{scrape_interval: {interval}}}\nscrape_configs:\n- job_name: promreload\n  static_configs: [{{targets: ['{sidecar_address}']}}]\n- job_name: reconciler\n  static_configs: [{{targets: ['{reconciler_address}']}}]\n"
        )
    };
    std::fs::write(&input, config("1s")).unwrap();
    let (input_s, output_s) = (input.display().to_string(), output.display().to_string());
    let env = [
        ("RELOADER_CONFIG_FILE", input_s.as_str()),
        ("RELOADER_CONFIG_ENVSUBST_FILE", output_s.as_str()),
        ("RELOADER_DELAY_INTERVAL", "0"),
        ("RELOADER_WATCH_INTERVAL", "1s"),
    ];
    let (status, log) = run_promreload(
        &[&env[..], &[("RELOADER_WATCH_INTERVAL", "0")]].concat(),
        &[],
    );
    assert!(status.success(), "{log}");
    let prometheus =
        block_in_place(|| Prometheus::start_with(free_port(), &output, PromOptions::default()));
    let reload_url = prometheus.reload_url();
    let sidecar_env = [
        &env[..],
        &[
            ("RELOADER_RELOAD_URL", reload_url.as_str()),
            ("RELOADER_LISTEN_ADDRESS", sidecar_address.as_str()),
        ],
    ]
    .concat();
    let daemon = block_in_place(|| Daemon::start(&sidecar_env, &[]));
    block_in_place(|| {
        daemon.wait_metric_at_least("reloader_reloads_total", 1.0, Duration::from_secs(30));
        // A refused input (apply errors by kind), then two good changes (reload durations).
        std::fs::write(&input, "\u{0}\u{1} not a config").unwrap();
        wait_until(
            Duration::from_secs(30),
            "the sidecar refuses the input",
            || daemon.metric("reloader_config_apply_operations_failed_total") >= 1.0,
        );
        for (i, interval) in ["2s", "1s"].iter().enumerate() {
            std::fs::write(&input, config(interval)).unwrap();
            daemon.wait_metric_at_least(
                "reloader_reloads_total",
                2.0 + i as f64,
                Duration::from_secs(30),
            );
        }
        wait_until(
            Duration::from_secs(60),
            "Prometheus has a few scrapes of both",
            || {
                prometheus
                    .query_value("min(count_over_time(up[1m]))")
                    .is_some_and(|n| n >= 4.0)
            },
        );
    });

    let mut checked = 0;
    let mut failures = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let query = expr
                .replace("$namespace", ".*")
                .replace("$__rate_interval", "1m");
            let response = block_in_place(|| {
                reqwest::blocking::Client::new()
                    .get(format!("http://127.0.0.1:{}/api/v1/query", prometheus.port))
                    .query(&[("query", query.as_str())])
                    .send()
                    .and_then(|r| r.text())
                    .unwrap()
            });
            let body: serde_json::Value = serde_json::from_str(&response).unwrap();
            let results = body["data"]["result"].as_array().map_or(0, Vec::len);
            if body["status"] != "success" || results == 0 {
                failures.push(format!("{}: {expr}: {response}", panel["title"]));
            }
            checked += 1;
        }
    }
    eprintln!("{checked} panel queries, {} without data", failures.len());
    assert!(checked >= 15, "{checked}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    drop(reconciler);
}
