//! API mode (`RELOADER_CONFIG_SECRET`) against a real kube-apiserver and a real Prometheus:
//! the sidecar reads its config Secret with a service-account token bound to exactly
//! deploy/api-mode's Role (one Secret, get/list/watch), and:
//! - a Secret change reaches Prometheus; the Role lets it read nothing else;
//! - a missing key and a deleted Secret are refused with the last good config kept, readiness
//!   unchanged, and the metric and `/status` saying why; a recreated Secret is applied;
//! - without the Role, the error says "forbidden" (the daemon and init mode);
//! - init mode renders from the API once and exits;
//! - the watch survives its kube-apiserver restarting, and applies a change made (through a
//!   second kube-apiserver) while it was down.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::cluster::{Cluster, kubectl, kubectl_run, unique};
use crate::support::*;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "prometheus-k8s";
const KEY: &str = "prometheus.yaml.gz";

fn config(job: &str) -> Vec<u8> {
    gzip(
        format!(
            "global:\n  external_labels:\n    replica: $(POD_NAME)\nscrape_configs:\n- job_name: {job}\n  static_configs:\n  - targets: ['127.0.0.1:1']\n"
        )
        .as_bytes(),
    )
}

/// Creates or replaces Secret `name` in `ns` with `data`, as the reconciler would.
fn put_secret(cluster: &Cluster, ns: &str, name: &str, data: &[(&str, Vec<u8>)]) {
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.into());
    secret.metadata.namespace = Some(ns.into());
    secret.data = Some(
        data.iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.clone())))
            .collect::<BTreeMap<_, _>>(),
    );
    let json = serde_json::to_string(&secret).unwrap();
    kubectl_run(
        cluster,
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&json),
    );
}

/// A namespace with deploy/'s Prometheus service account, optionally bound to deploy/api-mode's
/// Role, and a kubeconfig that authenticates as that service account with a token file.
struct Tenant {
    ns: String,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

impl Tenant {
    fn new(cluster: &Cluster, with_role: bool) -> Self {
        let ns = unique("api-mode");
        kubectl_run(cluster, &["create", "namespace", &ns], None);
        kubectl_run(
            cluster,
            &["-n", &ns, "create", "serviceaccount", "prometheus-k8s"],
            None,
        );
        if with_role {
            let rbac = fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/deploy/api-mode/rbac.yaml"
            ))
            .unwrap()
            .replace("namespace: monitoring", &format!("namespace: {ns}"));
            kubectl_run(cluster, &["apply", "-f", "-"], Some(&rbac));
        }
        let token = kubectl_run(
            cluster,
            &[
                "-n",
                &ns,
                "create",
                "token",
                "prometheus-k8s",
                "--duration=1h",
            ],
            None,
        );
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("token"), token.trim()).unwrap();
        let admin: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&fs::read_to_string(&cluster.kubeconfig).unwrap()).unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        write_kubeconfig(
            &kubeconfig,
            &admin["clusters"][0]["cluster"],
            &dir.path().join("token"),
            &ns,
        );
        Self {
            ns,
            kubeconfig,
            dir,
        }
    }

    /// kubectl as the service account; returns whether it succeeded, and its stderr.
    fn kubectl_as(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(kubectl())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn env<'a>(&'a self, output: &'a Path) -> Vec<(&'a str, &'a str)> {
        vec![
            ("KUBECONFIG", self.kubeconfig.to_str().unwrap()),
            ("RELOADER_CONFIG_SECRET", SECRET),
            ("RELOADER_CONFIG_ENVSUBST_FILE", output.to_str().unwrap()),
            ("RELOADER_DELAY_INTERVAL", "0"),
            ("POD_NAME", "prometheus-k8s-0"),
        ]
    }

    fn output(&self) -> PathBuf {
        self.dir.path().join("prometheus.env.yaml")
    }
}

fn write_kubeconfig(path: &Path, cluster: &serde_yaml_ng::Value, token: &Path, ns: &str) {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: sa\n  user:\n    tokenFile: {}\ncontexts:\n- name: test\n  context: {{cluster: test, user: sa, namespace: {ns}}}\ncurrent-context: test\n",
        cluster["server"].as_str().unwrap(),
        cluster["certificate-authority"].as_str().unwrap(),
        token.display()
    );
    fs::write(path, text).unwrap();
}

fn kind_errors(daemon: &Daemon, kind: &str) -> f64 {
    daemon.metric(&format!(
        "reloader_config_apply_errors_total{{kind=\"{kind}\"}}"
    ))
}

#[test]
fn a_secret_change_reaches_prometheus_with_a_role_for_that_secret_alone() {
    let cluster = Cluster::start();
    let tenant = Tenant::new(&cluster, true);
    let ns = tenant.ns.as_str();
    put_secret(&cluster, ns, SECRET, &[(KEY, config("job-a"))]);
    put_secret(&cluster, ns, "other", &[("password", b"hunter2".to_vec())]);

    // Least privilege: that Secret, and nothing else in the namespace.
    assert!(tenant.kubectl_as(&["get", "secret", SECRET]).0);
    for args in [
        &["get", "secret", "other"][..],
        &["get", "secrets"],
        &["get", "configmaps"],
    ] {
        let (ok, stderr) = tenant.kubectl_as(args);
        assert!(!ok && stderr.contains("forbidden"), "{args:?}: {stderr}");
    }

    let output = tenant.output();
    fs::write(&output, "global: {}\n").unwrap();
    let prometheus = Prometheus::start(&output);
    let url = prometheus.reload_url();
    let mut env = tenant.env(&output);
    env.push(("RELOADER_RELOAD_URL", &url));
    let daemon = Daemon::start(&env, &[]);
    wait_until(WAIT, "job-a is live", || {
        prometheus.loaded_config().contains("job_name: job-a")
    });
    assert!(
        fs::read_to_string(&output)
            .unwrap()
            .contains("replica: prometheus-k8s-0")
    );
    assert_eq!(daemon.metric("reloader_secret_watch_up"), 1.0);
    let status = daemon.status();
    assert_eq!(status["secret"]["secret"], format!("{ns}/{SECRET}"));
    assert!(status["secret"]["watch_error"].is_null(), "{status}");

    put_secret(&cluster, ns, SECRET, &[(KEY, config("job-b"))]);
    wait_until(WAIT, "job-b is live", || {
        prometheus.loaded_config().contains("job_name: job-b")
    });

    // The key goes missing: refused, the last good config stays, and the Pod stays ready.
    let reloads = daemon.metric("reloader_reloads_total");
    put_secret(&cluster, ns, SECRET, &[("other-key", config("job-c"))]);
    wait_until(WAIT, "the missing key is counted", || {
        kind_errors(&daemon, "key_missing") >= 1.0
    });
    let error = daemon.status()["last_apply_error"].to_string();
    assert!(
        error.contains(&format!("Secret {ns}/{SECRET} key {KEY}")) && error.contains("no key"),
        "{error}"
    );
    assert!(
        fs::read_to_string(&output)
            .unwrap()
            .contains("job_name: job-b")
    );
    assert_eq!(daemon.get("/readyz").0, 200);

    // Deleted: the same, with its own kind.
    kubectl_run(&cluster, &["-n", ns, "delete", "secret", SECRET], None);
    wait_until(WAIT, "the deletion is counted", || {
        kind_errors(&daemon, "secret_missing") >= 1.0
    });
    assert!(
        daemon.status()["last_apply_error"]
            .to_string()
            .contains("was deleted")
    );
    assert!(prometheus.loaded_config().contains("job_name: job-b"));
    assert_eq!(daemon.get("/readyz").0, 200);
    assert_eq!(daemon.metric("reloader_reloads_total"), reloads);

    // Recreated: applied at once.
    put_secret(&cluster, ns, SECRET, &[(KEY, config("job-d"))]);
    wait_until(WAIT, "job-d is live", || {
        prometheus.loaded_config().contains("job_name: job-d")
    });
    assert!(daemon.status()["last_apply_error"].is_null());
}

#[test]
fn without_the_role_the_error_says_forbidden() {
    let cluster = Cluster::start();
    let tenant = Tenant::new(&cluster, false);
    put_secret(&cluster, &tenant.ns, SECRET, &[(KEY, config("job-a"))]);
    let output = tenant.output();
    let env = tenant.env(&output);

    let daemon = Daemon::start(&env, &[]);
    daemon.wait_metric_at_least(
        "reloader_secret_watch_errors_total{kind=\"forbidden\"}",
        1.0,
        WAIT,
    );
    wait_until(WAIT, "the apply error names the cause", || {
        let error = daemon.status()["last_apply_error"].to_string();
        error.contains(&format!("Secret {}/{SECRET}", tenant.ns)) && error.contains("forbidden")
    });
    assert_eq!(daemon.metric("reloader_secret_watch_up"), 0.0);
    assert_eq!(daemon.get("/readyz").0, 503);
    assert!(!output.exists());

    let mut init = env.clone();
    init.push(("RELOADER_WATCH_INTERVAL", "0"));
    let (status, log) = run_promreload(&init, &[]);
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("forbidden") && log.contains(SECRET), "{log}");
    assert!(!output.exists());
}

#[test]
fn init_mode_renders_from_the_api_once() {
    let cluster = Cluster::start();
    let tenant = Tenant::new(&cluster, true);
    let output = tenant.output();
    let mut env = tenant.env(&output);
    env.push(("RELOADER_WATCH_INTERVAL", "0"));

    let (status, log) = run_promreload(&env, &[]);
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("the Secret does not exist"), "{log}");

    put_secret(&cluster, &tenant.ns, SECRET, &[(KEY, config("job-a"))]);
    let (status, log) = run_promreload(&env, &[]);
    assert!(status.success(), "{log}");
    let written = fs::read_to_string(&output).unwrap();
    assert!(
        written.contains("job_name: job-a") && written.contains("replica: prometheus-k8s-0"),
        "{written}"
    );
}

/// The sidecar's kube-apiserver stops; a change is made through a second one over the same
/// etcd; the first comes back on its port, and the watch resumes and applies the change.
/// Meanwhile the token rotates: the first is bound to a Secret that is then deleted (which
/// revokes it), so the resumed watch works only if the token file is read again.
#[test]
fn the_watch_resumes_after_its_api_server_restarts() {
    let cluster = Cluster::start_own();
    let dir = cluster.kubeconfig.parent().unwrap().to_path_buf();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/control-plane.sh");
    let control_plane = |command: &str| {
        let status = Command::new("bash")
            .args([script, command])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "control-plane.sh {command}");
    };
    control_plane("second");
    let second = Cluster::at(dir.join("kubeconfig-2"));
    let tenant = Tenant::new(&cluster, true);
    let ns = tenant.ns.as_str();
    put_secret(&cluster, ns, SECRET, &[(KEY, config("job-a"))]);
    put_secret(&cluster, ns, "first-token-holder", &[("x", b"x".to_vec())]);
    let token = |bound: &[&str]| {
        let args = [&["-n", ns, "create", "token", "prometheus-k8s"][..], bound].concat();
        kubectl_run(&cluster, &args, None).trim().to_string()
    };
    let first = token(&[
        "--bound-object-kind=Secret",
        "--bound-object-name=first-token-holder",
    ]);
    let token_file = tenant.dir.path().join("token");
    fs::write(&token_file, &first).unwrap();
    let output = tenant.output();
    let mock = mock::MockServer::start(|_| mock::Reply::Http(200, vec![], String::new()));
    let url = format!("http://127.0.0.1:{}/-/reload", mock.port);
    let mut env = tenant.env(&output);
    env.push(("RELOADER_RELOAD_URL", &url));
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);

    // Rotated, and the first token revoked.
    fs::write(&token_file, token(&[])).unwrap();
    kubectl_run(
        &cluster,
        &["-n", ns, "delete", "secret", "first-token-holder"],
        None,
    );

    control_plane("stop-apiserver");
    put_secret(&second, ns, SECRET, &[(KEY, config("job-b"))]);
    daemon.wait_metric_at_least(
        "reloader_secret_watch_errors_total{kind=\"unreachable\"}",
        1.0,
        WAIT,
    );
    assert_eq!(daemon.get("/readyz").0, 200);
    assert!(fs::read_to_string(&output).unwrap().contains("job-a"));

    control_plane("start-apiserver");
    wait_until(
        Duration::from_secs(60),
        "the change made while down",
        || fs::read_to_string(&output).unwrap().contains("job-b"),
    );
    daemon.wait_metric_at_least("reloader_reloads_total", 2.0, WAIT);
    assert_eq!(daemon.metric("reloader_secret_watch_up"), 1.0);
    assert!(daemon.status()["secret"]["watch_error"].is_null());
    assert_eq!(
        daemon.metric("reloader_secret_watch_errors_total{kind=\"unauthorized\"}"),
        0.0
    );
    // The check can fail: the first token is refused now.
    let first_file = tenant.dir.path().join("first-token");
    fs::write(&first_file, &first).unwrap();
    let first_kubeconfig = tenant.dir.path().join("first-kubeconfig");
    let admin: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&fs::read_to_string(&cluster.kubeconfig).unwrap()).unwrap();
    write_kubeconfig(
        &first_kubeconfig,
        &admin["clusters"][0]["cluster"],
        &first_file,
        ns,
    );
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(&first_kubeconfig)
        .args(["get", "secret", SECRET])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Unauthorized"), "{stderr}");
}
