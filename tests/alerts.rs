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

/// prometheus-operator's own `ConfigReloaderSidecarErrors`, from its module's mixin.
fn upstream_config_reloader_alert() -> Value {
    let out = Command::new("go")
        .args(["env", "GOMODCACHE"])
        .output()
        .expect("go env");
    let cache = String::from_utf8(out.stdout).unwrap();
    let path = Path::new(cache.trim()).join(
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
