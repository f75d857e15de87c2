//! The alerts of `deploy/monitoring/prometheusrule.yaml`, unit-tested with `promtool test
//! rules` (`tests/alerts/promreload.test.yaml`): each alert firing and not firing, and
//! kube-prometheus's `ConfigReloaderSidecarErrors`, read unchanged from prometheus-operator's
//! mixin in its Go module (fetched by `scripts/operator.sh`), firing on our metric. Every
//! alert has a test and a runbook section in the README.

mod support;

use std::path::Path;
use std::process::Command;

use serde_yaml_ng::Value;
use support::cluster::k8s_prometheus_dir;

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
