//! promreload as a drop-in for prometheus-config-reloader: the exact args prometheus-operator
//! passes, signal mode against a real Prometheus process, and reloads of a Prometheus that
//! serves HTTPS with client certificates and basic auth.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::mock::{MockServer, Reply};
use crate::support::pki::Pki;
use crate::support::pod::*;
use crate::support::*;

/// The operator's paths, rebased under `root`.
struct OperatorLayout {
    config: PathBuf,
    output: PathBuf,
    rules: KubeletVolume,
}

impl OperatorLayout {
    fn new(root: &Path) -> Self {
        let etc = root.join("etc/prometheus");
        fs::create_dir_all(etc.join("config_out")).unwrap();
        Self {
            config: etc.join("config/prometheus.yaml.gz"),
            output: etc.join("config_out/prometheus.env.yaml"),
            rules: KubeletVolume::new(&etc.join("rules/prometheus-k8s-rulefiles-0")),
        }
    }

    fn rule(&mut self, name: &str) {
        let rule = format!(
            "groups:\n- name: {name}\n  rules:\n  - record: {name}:up\n    expr: vector(1)\n"
        );
        self.rules
            .update(&[("default-rules.yaml", rule.as_bytes())]);
    }

    fn prometheus_config(&self, job: &str) -> String {
        format!(
            "{}rule_files:\n- {}/*.yaml\n",
            config(&[job]),
            self.rules.dir().display()
        )
    }

    fn args(&self, init: bool, listen: &str, reload_url: &str) -> Vec<String> {
        let mut args = vec![];
        if init {
            args.push("--watch-interval=0".to_string());
        }
        args.push(format!("--listen-address={listen}"));
        if !init {
            args.push(format!("--reload-url={reload_url}"));
        }
        args.extend([
            format!("--config-file={}", self.config.display()),
            format!("--config-envsubst-file={}", self.output.display()),
            format!("--watched-dir={}", self.rules.dir().display()),
            "--log-level=info".into(),
            "--log-format=logfmt".into(),
        ]);
        args
    }
}

const OPERATOR_ENV: &[(&str, &str)] = &[("POD_NAME", "prometheus-k8s-1"), ("SHARD", "0")];

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Exactly the two containers prometheus-operator v0.93 defines, on the ports it uses. The
/// ports are fixed (9090, 8080, 8081), so the test runs in a private network namespace where
/// they are free by construction, whatever listens on the host.
#[test]
fn operator_init_and_sidecar_args_work_unchanged() {
    if !in_private_network("drop_in::operator_init_and_sidecar_args_work_unchanged") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mut layout = OperatorLayout::new(root.path());
    let mut secret = KubeletVolume::new(layout.config.parent().unwrap());
    layout.rule("first");
    secret.update(&[(KEY, &gzip(layout.prometheus_config("job-a").as_bytes()))]);

    let init = layout.args(true, ":8081", "");
    let (status, log) = run_promreload(OPERATOR_ENV, &strs(&init));
    assert!(status.success(), "{log}");
    let written = fs::read_to_string(&layout.output).unwrap();
    assert!(
        written.contains("prometheus_replica: prometheus-k8s-1"),
        "{written}"
    );

    let prometheus = Prometheus::start_on(9090, &layout.output);
    let sidecar = layout.args(false, ":8080", "http://localhost:9090/-/reload");
    let daemon = Daemon::start(OPERATOR_ENV, &strs(&sidecar));
    assert!(daemon.admin.ends_with(":8080"), "{}", daemon.admin);
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
    assert_eq!(daemon.get("/healthz").0, 200);

    secret.update(&[(KEY, &gzip(layout.prometheus_config("job-b").as_bytes()))]);
    wait_until(WAIT, "the new job is live", || {
        prometheus.loaded_config().contains("job_name: job-b")
    });
    let reloads = daemon.metric("reloader_reloads_total");
    layout.rule("second");
    daemon.wait_metric_at_least("reloader_reloads_total", reloads + 1.0, WAIT);
    wait_until(WAIT, "the new rule group is loaded", || {
        let rules = reqwest::blocking::get("http://127.0.0.1:9090/api/v1/rules")
            .and_then(|r| r.text())
            .unwrap_or_default();
        rules.contains("\"name\":\"second\"")
    });
}

/// Whether this process is in a private network namespace. If not, runs the named test of
/// this binary again inside one (`unshare`, loopback up; as a mapped root when unprivileged),
/// asserts that it passed there, and returns false.
fn in_private_network(test: &str) -> bool {
    const MARK: &str = "PROMRELOAD_TEST_PRIVATE_NETWORK";
    if std::env::var_os(MARK).is_some() {
        return true;
    }
    let unshare: &[&str] = if unsafe { libc::geteuid() } == 0 {
        &["unshare", "--net"]
    } else {
        &["unshare", "--map-root-user", "--net"]
    };
    let out = std::process::Command::new(unshare[0])
        .args(&unshare[1..])
        .args(["sh", "-c", "ip link set lo up && exec \"$@\"", "sh"])
        .arg(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(MARK, "1")
        .output()
        .expect("run unshare");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{test} in a private network namespace:\n{log}"
    );
    assert!(log.contains("1 passed"), "{test} did not run:\n{log}");
    false
}

#[test]
fn help_lists_the_flags_and_unknown_flags_exit_2() {
    let (status, out) = run_promreload(&[], &["--help"]);
    assert!(status.success());
    for flag in [
        "--config-envsubst-file",
        "--watched-dir",
        "--reload-method",
        "--runtimeinfo-url",
    ] {
        assert!(out.contains(flag), "{flag} missing from --help");
    }
    let (status, out) = run_promreload(&[], &["--config-file=/x", "--no-such-flag=1"]);
    assert_eq!(status.code(), Some(2));
    assert!(out.contains("--no-such-flag"), "{out}");
    let (status, out) = run_promreload(&[], &["--config-file"]);
    assert_eq!(status.code(), Some(2), "{out}");
    let (status, out) =
        run_promreload(&[], &["--config-file=/x", "--reload-method=carrier-pigeon"]);
    assert_eq!(status.code(), Some(2));
    assert!(out.contains("--reload-method"), "{out}");
}

#[test]
fn statefulset_ordinal_is_derived_from_pod_name() {
    let mut pod = Pod::new();
    pod.publish("global:\n  external_labels:\n    ordinal: \"$(STATEFULSET_ORDINAL_NUMBER)\"\n");
    let (status, log) = pod.init(&[]);
    assert!(status.success(), "{log}");
    assert!(
        pod.output_text().contains("ordinal: \"7\""),
        "{}",
        pod.output_text()
    );
}

/// A Prometheus started through a symlink with a unique name, so that signal mode finds this
/// test's process and no other test's.
fn prometheus_named(config: &Path) -> (Prometheus, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("promsig{}", free_port());
    let exe = dir.path().join(&name);
    let real = fs::canonicalize(which("prometheus")).unwrap();
    std::os::unix::fs::symlink(real, &exe).unwrap();
    let opts = PromOptions {
        exe,
        ..PromOptions::default()
    };
    (Prometheus::start_with(free_port(), config, opts), name, dir)
}

fn which(cmd: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{cmd} not on PATH"))
}

#[test]
fn signal_mode_reloads_a_real_prometheus_and_detects_rejection() {
    let mut pod = Pod::new();
    pod.publish(&config(&["sig-a"]));
    assert!(pod.init(&[]).0.success());
    let (prometheus, name, _dir) = prometheus_named(&pod.output());
    let daemon = pod.daemon(
        "http://127.0.0.1:1/-/reload",
        &[
            ("RELOADER_RELOAD_METHOD", "signal"),
            ("RELOADER_PROCESS_EXECUTABLE_NAME", &name),
            ("RELOADER_RUNTIMEINFO_URL", &prometheus.runtimeinfo_url()),
            ("RELOADER_RELOAD_TIMEOUT", "5s"),
        ],
    );
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);

    pod.publish(&config(&["sig-b"]));
    wait_until(WAIT, "SIGHUP loads the new job", || {
        prometheus.loaded_config().contains("job_name: sig-b")
    });
    daemon.wait_metric_at_least("reloader_reloads_total", 2.0, WAIT);
    assert_eq!(daemon.metric("reloader_last_reload_successful"), 1.0);

    pod.publish("global:\n  scrape_interval: banana\n");
    daemon.wait_metric_at_least("reloader_reload_errors_total{kind=\"rejected\"}", 1.0, WAIT);
    assert!(prometheus.loaded_config().contains("job_name: sig-b"));

    pod.publish(&config(&["sig-c"]));
    wait_until(WAIT, "the fixed config loads by signal", || {
        prometheus.loaded_config().contains("job_name: sig-c")
    });
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
}

#[test]
fn signal_mode_without_the_process_fails_clearly() {
    let mut pod = Pod::new();
    pod.publish(&config(&["a"]));
    let prometheus = Prometheus::start(&{
        assert!(pod.init(&[]).0.success());
        pod.output()
    });
    let daemon = pod.daemon(
        "http://127.0.0.1:1/-/reload",
        &[
            ("RELOADER_RELOAD_METHOD", "signal"),
            ("RELOADER_PROCESS_EXECUTABLE_NAME", "no-such-proc"),
            ("RELOADER_RUNTIMEINFO_URL", &prometheus.runtimeinfo_url()),
        ],
    );
    daemon.wait_metric_at_least("reloader_reload_errors_total{kind=\"process\"}", 1.0, WAIT);
    assert!(
        daemon
            .process
            .log()
            .contains("no process named \\\"no-such-proc\\\""),
        "{}",
        daemon.process.log()
    );
}

fn bcrypt(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

fn write_web_config(path: &Path, pki: &Pki, client_certs: bool, users: &[(&str, &str)]) {
    let mut web = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        pki.server_cert.display(),
        pki.server_key.display()
    );
    if client_certs {
        web.push_str(&format!(
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n",
            pki.ca.display()
        ));
    }
    if !users.is_empty() {
        web.push_str("basic_auth_users:\n");
        for (user, password) in users {
            web.push_str(&format!("  {user}: {}\n", bcrypt(password)));
        }
    }
    fs::write(path, web).unwrap();
}

#[test]
fn https_reload_with_client_certificate_and_rotated_basic_auth() {
    let pki = Pki::new();
    let web = pki.dir.path().join("web.yaml");
    write_web_config(&web, &pki, true, &[("admin", "first-secret")]);
    let password_file = pki.dir.path().join("password");
    fs::write(&password_file, "first-secret\n").unwrap();

    let mut pod = Pod::new();
    pod.publish(&config(&["tls-a"]));
    assert!(pod.init(&[]).0.success());
    let opts = PromOptions {
        web_config: Some(web.clone()),
        scheme: "https",
        client: pki.client(true),
        basic_auth: Some(("admin".into(), "first-secret".into())),
        ..PromOptions::default()
    };
    let mut prometheus = Prometheus::start_with(free_port(), &pod.output(), opts);
    let (ca, cert, key, pw) = (
        pki.ca.display().to_string(),
        pki.client_cert.display().to_string(),
        pki.client_key.display().to_string(),
        password_file.display().to_string(),
    );
    let daemon = pod.daemon(
        &prometheus.reload_url(),
        &[
            ("RELOADER_RELOAD_CA_FILE", &ca),
            ("RELOADER_RELOAD_CERT_FILE", &cert),
            ("RELOADER_RELOAD_KEY_FILE", &key),
            ("RELOADER_RELOAD_USERNAME", "admin"),
            ("RELOADER_RELOAD_PASSWORD_FILE", &pw),
        ],
    );
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
    pod.publish(&config(&["tls-b"]));
    wait_until(WAIT, "tls-b live", || {
        prometheus.loaded_config().contains("job_name: tls-b")
    });

    // Rotate the password on both sides: Prometheus re-reads its web config per request.
    write_web_config(&web, &pki, true, &[("admin", "second-secret")]);
    fs::write(&password_file, "second-secret").unwrap();
    prometheus.set_basic_auth("admin", "second-secret");
    pod.publish(&config(&["tls-c"]));
    wait_until(WAIT, "tls-c live after rotation", || {
        prometheus.loaded_config().contains("job_name: tls-c")
    });
    assert_eq!(daemon.metric("reloader_reloads_failed_total"), 0.0);

    // A wrong password is a clear 401, retried.
    fs::write(&password_file, "wrong").unwrap();
    pod.publish(&config(&["tls-d"]));
    daemon.wait_metric_at_least("reloader_reload_errors_total{kind=\"status\"}", 1.0, WAIT);
    let status = daemon.get("/status").1;
    assert!(status.contains("401"), "{status}");

    let everything = daemon.process.log() + &daemon.get("/metrics").1 + &status;
    for secret in ["first-secret", "second-secret", "wrong"] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
}

/// A client certificate made the common way (`openssl x509 -req` without extensions: X.509
/// v1), which Go's crypto/tls takes and rustls's own loader refuses: the sidecar presents it,
/// and the real Prometheus, requiring verified client certificates, accepts the reload.
#[test]
fn a_v1_client_certificate_is_presented_as_go_presents_it() {
    let pki = Pki::new();
    let web = pki.dir.path().join("web.yaml");
    write_web_config(&web, &pki, true, &[]);
    let (cert, key) = pki.v1_client("v1-client");
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("Version: 1 (0x0)"),
        "the fixture is a v1 certificate"
    );
    let mut pod = Pod::new();
    pod.publish(&config(&["v1-a"]));
    assert!(pod.init(&[]).0.success());
    let opts = PromOptions {
        web_config: Some(web),
        scheme: "https",
        client: pki.client(true),
        ..PromOptions::default()
    };
    let prometheus = Prometheus::start_with(free_port(), &pod.output(), opts);
    let (ca, cert, key) = (
        pki.ca.display().to_string(),
        cert.display().to_string(),
        key.display().to_string(),
    );
    let daemon = pod.daemon(
        &prometheus.reload_url(),
        &[
            ("RELOADER_RELOAD_CA_FILE", &ca),
            ("RELOADER_RELOAD_CERT_FILE", &cert),
            ("RELOADER_RELOAD_KEY_FILE", &key),
        ],
    );
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
    pod.publish(&config(&["v1-b"]));
    wait_until(WAIT, "v1-b live", || {
        prometheus.loaded_config().contains("job_name: v1-b")
    });
    assert_eq!(daemon.metric("reloader_reloads_failed_total"), 0.0);
}

#[test]
fn certificates_are_verified_unless_explicitly_skipped() {
    let pki = Pki::new();
    let web = pki.dir.path().join("web.yaml");
    write_web_config(&web, &pki, false, &[]);
    let mut pod = Pod::new();
    pod.publish(&config(&["v"]));
    assert!(pod.init(&[]).0.success());
    let opts = PromOptions {
        web_config: Some(web),
        scheme: "https",
        client: pki.client(false),
        ..PromOptions::default()
    };
    let prometheus = Prometheus::start_with(free_port(), &pod.output(), opts);

    let daemon = pod.daemon(&prometheus.reload_url(), &[]);
    daemon.wait_metric_at_least("reloader_reload_errors_total{kind=\"request\"}", 1.0, WAIT);
    let status = daemon.get("/status").1;
    assert!(status.contains("UnknownIssuer"), "{status}");
    drop(daemon);

    let daemon = pod.daemon(
        &prometheus.reload_url(),
        &[("RELOADER_RELOAD_INSECURE_SKIP_VERIFY", "true")],
    );
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
}

#[test]
fn bearer_token_is_sent_and_re_read_at_each_reload() {
    let mock = MockServer::start(|head| {
        let ok = head
            .to_ascii_lowercase()
            .contains("authorization: bearer token-");
        Reply::Http(if ok { 200 } else { 401 }, vec![], String::new())
    });
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    fs::write(&token, "token-one\n").unwrap();
    let mut pod = Pod::new();
    pod.publish(&config(&["a"]));
    let token_path = token.display().to_string();
    let daemon = pod.daemon(
        &mock.url("/-/reload"),
        &[("RELOADER_RELOAD_BEARER_TOKEN_FILE", &token_path)],
    );
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
    fs::write(&token, "token-two").unwrap();
    pod.publish(&config(&["b"]));
    daemon.wait_metric_at_least("reloader_reloads_total", 2.0, WAIT);
    let requests = mock.requests.lock().unwrap().join("\n");
    assert!(requests.contains("Bearer token-one"), "{requests}");
    assert!(requests.contains("Bearer token-two"), "{requests}");
    assert!(requests.starts_with("POST /-/reload"), "{requests}");
    assert!(
        !daemon.process.log().contains("token-"),
        "token leaked into the log"
    );
}

#[test]
fn admin_endpoints_over_tls_from_variables_or_web_config() {
    let pki = Pki::new();
    let mut pod = Pod::new();
    pod.publish(&config(&["a"]));
    let (cert, key) = (
        pki.server_cert.display().to_string(),
        pki.server_key.display().to_string(),
    );
    let daemon = Daemon::start_scheme(
        &borrow(&pod.env("http://127.0.0.1:1/-/reload"))
            .into_iter()
            .chain([
                ("RELOADER_WEB_TLS_CERT_FILE", cert.as_str()),
                ("RELOADER_WEB_TLS_KEY_FILE", key.as_str()),
            ])
            .collect::<Vec<_>>(),
        &[],
        "https",
    );
    let client = pki.client(false);
    let healthz = client
        .get(format!("{}/healthz", daemon.admin))
        .send()
        .unwrap();
    assert_eq!(healthz.status(), 200);
    let plain = daemon.admin.replace("https://", "http://");
    assert!(
        http_get_status(&format!("{plain}/healthz")) != Some(200),
        "plain HTTP must not be served"
    );
    drop(daemon);

    let web = pki.dir.path().join("reloader-web.yaml");
    fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
    )
    .unwrap();
    let env = pod.env("http://127.0.0.1:1/-/reload");
    let arg = format!("--web-config-file={}", web.display());
    let daemon = Daemon::start_scheme(&borrow(&env), &[&arg], "https");
    let without = pki
        .client(false)
        .get(format!("{}/metrics", daemon.admin))
        .send();
    assert!(without.is_err(), "a client certificate is required");
    let with = pki
        .client(true)
        .get(format!("{}/metrics", daemon.admin))
        .send()
        .unwrap();
    assert_eq!(with.status(), 200);

    fs::write(&web, "basic_auth_users:\n  a: b\n").unwrap();
    let (status, out) = run_promreload(&borrow(&env), &[&arg]);
    assert_eq!(status.code(), Some(2));
    assert!(out.contains("basic_auth_users"), "{out}");
}

fn http_get_status(url: &str) -> Option<u16> {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .ok()?
        .get(url)
        .send()
        .ok()
        .map(|r| r.status().as_u16())
}

/// prometheus-operator's `--reload-url=http://localhost:9090/-/reload` works where the image
/// has no `/etc/hosts` (the static binary on an image without libc files): `localhost` is the
/// loopback (RFC 6761) without asking the system resolver. Here `/etc/hosts` is empty in a
/// private mount namespace, so the system resolver cannot answer for `localhost`.
#[test]
fn localhost_is_the_loopback_without_a_hosts_file() {
    let mock = MockServer::start(|_| Reply::Http(200, vec![], String::new()));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yaml");
    fs::write(&config, "global: {}\nscrape_configs: []\n").unwrap();
    let url = format!("http://localhost:{}/-/reload", mock.port);
    let env = [
        ("RELOADER_CONFIG_FILE", config.to_str().unwrap()),
        ("RELOADER_RELOAD_URL", url.as_str()),
        ("RELOADER_DELAY_INTERVAL", "0"),
    ];
    let script = "mount --bind /dev/null /etc/hosts && ! getent hosts localhost && exec \"$0\"";
    let daemon = Daemon::start_wrapped(&env, &["unshare", "-m", "sh", "-c", script]);
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
    let requests = mock.requests.lock().unwrap().clone();
    assert!(
        requests.iter().any(|r| r.starts_with("POST /-/reload")),
        "{requests:?}"
    );
}

/// A Pod prometheus-operator generates for a Prometheus with `spec.web.tlsConfig`: the server
/// and the reloader get the same web config, and the reload URL is
/// `https://localhost:9090/-/reload` with no CA. The certificate here names neither
/// `localhost` nor the loopback, and no CA signed it: the reloader trusts it because it is
/// byte for byte the certificate the web config names. A server presenting another
/// certificate is refused, and the reloads recover once it serves the right one again.
#[test]
fn https_on_the_loopback_trusts_the_servers_own_certificate() {
    let pki = Pki::new();
    let (cert, key) = pki.self_signed("prometheus", "prometheus-k8s-0.monitoring.example");
    let (other_cert, other_key) =
        pki.self_signed("impostor", "prometheus-k8s-0.monitoring.example");
    let web_text = |cert: &Path, key: &Path| {
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n",
            cert.display(),
            key.display()
        )
    };
    // The operator mounts one web config into both containers; the server's copy is a file
    // of its own here only so that the test can make the server present another certificate.
    let reloader_web = pki.dir.path().join("reloader-web-config.yaml");
    let server_web = pki.dir.path().join("server-web-config.yaml");
    fs::write(&reloader_web, web_text(&cert, &key)).unwrap();
    fs::write(&server_web, web_text(&cert, &key)).unwrap();

    let mut pod = Pod::new();
    pod.publish(&config(&["pinned-a"]));
    assert!(pod.init(&[]).0.success());
    let opts = PromOptions {
        web_config: Some(server_web.clone()),
        scheme: "https",
        client: pki.unverifying_client(false),
        ..PromOptions::default()
    };
    let prometheus = Prometheus::start_with(free_port(), &pod.output(), opts);
    let url = format!("https://localhost:{}/-/reload", prometheus.port);
    let web_arg = format!("--web-config-file={}", reloader_web.display());
    let env = pod.env(&url);
    let daemon = Daemon::start_scheme(&borrow(&env), &[&web_arg], "https")
        .with_client(pki.unverifying_client(false));
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
    pod.publish(&config(&["pinned-b"]));
    wait_until(WAIT, "pinned-b live", || {
        prometheus.loaded_config().contains("job_name: pinned-b")
    });
    assert!(prometheus.runtime_info().1, "reloadConfigSuccess");
    assert_eq!(daemon.metric("reloader_reloads_failed_total"), 0.0);

    // The reloader's own admin server serves the same web config: HTTPS, and the header.
    let healthz = pki
        .unverifying_client(false)
        .get(format!("{}/healthz", daemon.admin))
        .send()
        .unwrap();
    assert_eq!(healthz.status(), 200);
    assert_eq!(healthz.headers()["x-frame-options"], "deny");

    // Another certificate on the same port is not the server's own: refused, and said so.
    fs::write(&server_web, web_text(&other_cert, &other_key)).unwrap();
    pod.publish(&config(&["pinned-c"]));
    daemon.wait_metric_at_least("reloader_reload_errors_total{kind=\"request\"}", 1.0, WAIT);
    assert_eq!(daemon.metric("reloader_last_reload_successful"), 0.0);
    let status = daemon.get("/status").1;
    assert!(
        status.contains("is not the one in") && status.contains("cert_file"),
        "{status}"
    );
    assert!(!prometheus.loaded_config().contains("pinned-c"));

    fs::write(&server_web, web_text(&cert, &key)).unwrap();
    wait_until(
        WAIT,
        "pinned-c live once the server's own certificate is back",
        || prometheus.loaded_config().contains("job_name: pinned-c"),
    );
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
    let log = daemon.process.log();
    assert!(log.contains("reload failed"), "{log}");
    assert!(log.contains("reloads work again"), "{log}");
}

/// Every `client_auth_type` of exporter-toolkit, basic auth and the extra headers on the
/// admin server, each with real handshakes; and what cannot be honoured is refused at start.
#[test]
fn admin_server_honours_the_web_config_as_exporter_toolkit_does() {
    let pki = Pki::new();
    // A client certificate no CA signed (RequireAnyClientCert takes it, the verifying
    // policies do not).
    let (stranger_cert, stranger_key) = pki.self_signed("stranger", "stranger.example");
    let stranger = pki.client_presenting(&stranger_cert, &stranger_key);
    let mut pod = Pod::new();
    pod.publish(&config(&["a"]));
    let env = pod.env("http://127.0.0.1:1/-/reload");
    let web = pki.dir.path().join("reloader-web.yaml");
    let arg = format!("--web-config-file={}", web.display());
    let status = |client: &reqwest::blocking::Client, daemon: &Daemon| {
        client
            .get(format!("{}/healthz", daemon.admin))
            .send()
            .map(|r| r.status().as_u16())
            .ok()
    };
    // (policy, without a certificate, with the CA's client certificate, with a stranger's)
    for (policy, none, signed, unsigned) in [
        ("RequestClientCert", Some(200), Some(200), Some(200)),
        ("RequireAnyClientCert", None, Some(200), Some(200)),
        ("VerifyClientCertIfGiven", Some(200), Some(200), None),
        ("RequireAndVerifyClientCert", None, Some(200), None),
    ] {
        fs::write(
            &web,
            format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: {policy}\n  client_ca_file: ca.crt\n"),
        )
        .unwrap();
        let daemon = Daemon::start_scheme(&borrow(&env), &[&arg], "https");
        assert_eq!(
            status(&pki.client(false), &daemon),
            none,
            "{policy} without a certificate"
        );
        assert_eq!(
            status(&pki.client(true), &daemon),
            signed,
            "{policy} with the CA's"
        );
        assert_eq!(
            status(&stranger, &daemon),
            unsigned,
            "{policy} with a stranger's"
        );
    }

    let hash = bcrypt::hash("s3cret", 4).unwrap();
    fs::write(
        &web,
        format!("basic_auth_users:\n  admin: {hash}\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n    Content-Security-Policy: default-src 'none'\n"),
    )
    .unwrap();
    let daemon = Daemon::start(&borrow(&env), &[&arg]);
    let client = reqwest::blocking::Client::new();
    let url = format!("{}/metrics", daemon.admin);
    let anonymous = client.get(&url).send().unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Basic");
    assert_eq!(anonymous.headers()["x-content-type-options"], "nosniff");
    let wrong = client
        .get(&url)
        .basic_auth("admin", Some("guess"))
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = client
        .get(&url)
        .basic_auth("admin", Some("s3cret"))
        .send()
        .unwrap();
    assert_eq!(right.status(), 200);
    assert_eq!(
        right.headers()["content-security-policy"],
        "default-src 'none'"
    );
    assert!(right.text().unwrap().contains("reloader_reloads_total"));
    assert!(!daemon.process.log().contains("s3cret"));
    drop(daemon);

    for (text, key) in [
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  client_allowed_sans: [a]\n",
            "client_allowed_sans",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  max_version: TLS11\n",
            "max_version",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: Often\n",
            "client_auth_type",
        ),
        (
            "http_server_config:\n  headers:\n    Server: promreload\n",
            "Server",
        ),
        ("rate_limit:\n  burst: 5\n  interval: 1s\n", "rate_limit"),
    ] {
        fs::write(&web, text).unwrap();
        let (status, out) = run_promreload(&borrow(&env), &[&arg]);
        assert_eq!(status.code(), Some(2), "{text}: {out}");
        assert!(
            out.contains(key) && out.contains("web-config-file"),
            "{text}: {out}"
        );
    }
}
