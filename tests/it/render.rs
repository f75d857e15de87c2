//! The reconciler's rendering through `promreload-reconciler render`:
//! - conformance with prometheus-operator's own golden files (`../shared/conformance/`),
//!   compared as parsed YAML on the top-level `global` and `scrape_configs`;
//! - our golden files (`tests/golden/`), compared byte for byte (rendering is deterministic)
//!   and each config checked by `promtool check config` after `$(POD_NAME)`/`$(SHARD)` expansion.
//!
//! Set `UPDATE_GOLDEN=1` to rewrite our golden files after an intended change.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::cluster::promtool_check;

fn render(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_promreload-reconciler"))
        .arg("render")
        .args(args)
        .output()
        .expect("run promreload-reconciler")
}

/// The operator's conformance cases in `../shared/conformance`, which a plain clone does not
/// have: the test using them is skipped (saying so) unless `CI=true`, where it is required.
fn conformance_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance");
    if dir.is_dir() {
        return Some(dir);
    }
    let message = format!(
        "{} is absent: the conformance cases live in shared/ beside the project's clone",
        dir.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("skipped: {message}");
    None
}

/// The compared part of a config, as JSON (maps compare regardless of key order).
fn compared(yaml: &str) -> serde_json::Value {
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).expect("parse YAML");
    let mut json = serde_json::to_value(&value).expect("YAML -> JSON");
    let object = json.as_object_mut().expect("a config is a mapping");
    object.retain(|k, _| k == "global" || k == "scrape_configs");
    json
}

#[test]
fn conformance_with_prometheus_operator_goldens() {
    let Some(dir) = conformance_dir() else { return };
    let mut cases: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input.yaml").is_file())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 14,
        "expected the 14 shared cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let expected = fs::read_to_string(case.join("expected.yaml")).unwrap();
        // The shared goldens predate prometheus-operator v0.94, whose default feature gate
        // PrometheusShardRetentionPolicy adds the `__tmp_current_shard` rules: rendered with
        // the gate off, as the operator renders them with `--feature-gates` set the same way.
        // The default (gate on) is checked against the real operator in tests/it/oracle.rs.
        // The Go tests also call the generator directly, so a Prometheus without selectors
        // (the global-settings cases) is rendered, as with the operator's
        // --disable-unmanaged-prometheus-configuration.
        let out = render(&[
            "--feature-gates=PrometheusShardRetentionPolicy=false",
            "--disable-unmanaged-prometheus-configuration",
            case.join("input.yaml").to_str().unwrap(),
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if expected.trim().is_empty() {
            // The golden is empty: generation must fail, with a reason.
            if out.status.code() != Some(1) || !stderr.contains("error:") {
                failures.push(format!(
                    "{name}: expected an error, got {:?}: {stdout}",
                    out.status
                ));
            }
            continue;
        }
        if !out.status.success() {
            failures.push(format!("{name}: render failed: {stderr}"));
        } else if compared(&stdout) != compared(&expected) {
            failures.push(format!(
                "{name}: differs\n--- ours\n{stdout}\n--- expected\n{expected}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_scrape_timeout_case_names_the_reason() {
    let Some(dir) = conformance_dir() else { return };
    let input = dir.join("GlobalSettingsInvalidScrapeTimeout/input.yaml");
    let out = render(&[
        "--disable-unmanaged-prometheus-configuration",
        input.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("scrapeTimeout 60s is greater than scrapeInterval 30s"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

fn golden_cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut cases: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    cases
}

#[test]
fn our_goldens_match_byte_for_byte_and_pass_promtool() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for case in golden_cases() {
        let out = render(&[case.join("input.yaml").to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}: {}",
            case.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let (stdout, stderr) = (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        );
        if update {
            fs::write(case.join("expected.yaml"), &stdout).unwrap();
            fs::write(case.join("expected.stderr"), &stderr).unwrap();
        }
        assert_eq!(
            stdout,
            fs::read_to_string(case.join("expected.yaml")).unwrap(),
            "{}",
            case.display()
        );
        assert_eq!(
            stderr,
            fs::read_to_string(case.join("expected.stderr")).unwrap(),
            "{}",
            case.display()
        );
        for (i, config) in stdout.split("\n---\n").enumerate() {
            promtool_check(config, &format!("{} config {i}", case.display()));
        }
    }
}

#[test]
fn rendering_is_deterministic() {
    let input =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/multi-namespace/input.yaml");
    let first = render(&[input.to_str().unwrap()]).stdout;
    for _ in 0..3 {
        assert_eq!(render(&[input.to_str().unwrap()]).stdout, first);
    }
}

#[test]
fn one_prometheus_can_be_chosen_and_stdin_read() {
    let input =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/multi-namespace/input.yaml");
    let text = fs::read(&input).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_promreload-reconciler"))
        .args(["render", "--prometheus", "team-b/local", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &text).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        !stdout.contains("# Prometheus"),
        "a single config has no header"
    );
    assert!(stdout.contains("prometheus: team-b/local"));
    assert!(stdout.contains("serviceMonitor/team-b/zeta/0"));
    assert!(
        !stdout.contains("serviceMonitor/team-a/"),
        "only its own namespace"
    );

    let out = render(&["--prometheus", "nowhere/none", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Prometheus nowhere/none"));
}

#[test]
fn bad_usage_and_bad_yaml_are_reported() {
    assert_eq!(render(&[]).status.code(), Some(2));
    assert_eq!(render(&["--frob", "x"]).status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    fs::write(
        &bad,
        "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nspec: [not, a, map]\n",
    )
    .unwrap();
    let out = render(&[bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("document 1"));
}

#[test]
fn render_into_a_closed_pipe_does_not_panic() {
    // `render ... | head` closes the pipe early: the rest is dropped quietly.
    let input =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/multi-namespace/input.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_promreload-reconciler"))
        .arg("render")
        .arg(&input)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
}

#[test]
fn every_scrape_kind_renders_and_a_bad_scrape_config_is_left_out_alone() {
    let dir = tempfile::tempdir().unwrap();
    let prometheus = "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {name: k8s, namespace: mon}\nspec: {serviceMonitorSelector: {}, podMonitorSelector: {}, probeSelector: {}, scrapeConfigSelector: {}}\n";
    let with = dir.path().join("with.yaml");
    fs::write(
        &with,
        format!(
            "{prometheus}---\napiVersion: monitoring.coreos.com/v1\nkind: Probe\nmetadata: {{name: blackbox, namespace: mon}}\nspec: {{prober: {{url: 'blackbox:9115'}}, targets: {{staticConfig: {{static: [example.com]}}}}}}\n---\napiVersion: monitoring.coreos.com/v1alpha1\nkind: ScrapeConfig\nmetadata: {{name: external, namespace: mon}}\nspec: {{staticConfigs: [{{targets: ['db.example:9187']}}], relabelings: [{{targetLabel: team, replacement: db}}]}}\n---\napiVersion: monitoring.coreos.com/v1alpha1\nkind: ScrapeConfig\nmetadata: {{name: cloud, namespace: mon}}\nspec: {{ec2SDConfigs: [{{region: eu-west-1}}]}}\n---\napiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {{name: sidecars, namespace: mon}}\nspec: {{selector: {{matchLabels: {{app: envoy}}}}, podMetricsEndpoints: [{{port: http-envoy-prom}}]}}\n"
        ),
    )
    .unwrap();
    let out = render(&[with.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let config = String::from_utf8_lossy(&out.stdout);
    assert!(
        config.contains("- job_name: podMonitor/mon/sidecars/0"),
        "{config}"
    );
    assert!(
        config.contains("- job_name: probe/mon/blackbox\n")
            && config.contains("metrics_path: /probe"),
        "{config}"
    );
    assert!(
        config.contains("- job_name: scrapeConfig/mon/external\n")
            && config.contains("- db.example:9187")
            && config.contains("action: replace"),
        "the ScrapeConfig's job, its relabeling with the API server's default action: {config}"
    );
    assert!(!config.contains("scrapeConfig/mon/cloud"), "{config}");
    assert!(
        stderr.contains("ScrapeConfig mon/cloud left out of Prometheus mon/k8s (InvalidConfiguration): spec.ec2SDConfigs is not rendered by promreload-reconciler"),
        "{stderr}"
    );
}
