//! A real control plane (etcd + kube-apiserver from `scripts/control-plane.sh`), the real
//! reconciler binary, and the Prometheus build that understands `kubernetes_sd_configs`.
//!
//! `scripts/test.sh` starts one control plane for the whole run and passes its kubeconfig in
//! `PROMRELOAD_TEST_KUBECONFIG`; without it, each [`Cluster`] starts (and stops) its own.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt};

use super::{Process, poll};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs one of the project's build scripts and returns the path it prints.
pub fn built(script: &str) -> PathBuf {
    let out = Command::new("bash")
        .arg(repo().join("scripts").join(script))
        .arg("build")
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run scripts/{script}: {e}"));
    assert!(out.status.success(), "scripts/{script} build failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The directory holding the real `prometheus-operator` and its upstream CRDs (`crds/`).
pub fn operator_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| built("operator.sh"))
}

/// The kubectl built with the control plane.
pub fn kubectl() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| built("control-plane.sh"))
        .join("kubectl")
}

/// Directory with `prometheus` and `promtool` that support Kubernetes service discovery.
pub fn k8s_prometheus_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| built("prometheus.sh"))
}

/// Runs `promtool check config` (the Kubernetes-capable build) on `config` after expanding
/// the sidecar's variables as a Pod would; panics with promtool's words if it is refused.
pub fn promtool_check(config: &str, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prometheus.yaml");
    let expanded = config
        .replace("$(POD_NAME)", "prometheus-k8s-0")
        .replace("$(SHARD)", "0");
    fs::write(&path, expanded).unwrap();
    let out = Command::new(k8s_prometheus_dir().join("promtool"))
        .args(["check", "config", "--syntax-only"])
        .arg(&path)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool rejects {what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Tests that share a control plane and run reconcilers take turns.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// A control plane to test against.
pub struct Cluster {
    pub kubeconfig: PathBuf,
    /// Set when this process started the control plane (stopped on drop).
    own: Option<tempfile::TempDir>,
}

impl Cluster {
    /// The shared control plane, or a new one.
    pub fn start() -> Self {
        if let Some(path) = std::env::var_os("PROMRELOAD_TEST_KUBECONFIG") {
            return Self::at(PathBuf::from(path));
        }
        Self::start_own()
    }

    /// The control plane `kubeconfig` points at (started by someone else).
    pub fn at(kubeconfig: PathBuf) -> Self {
        Self {
            kubeconfig,
            own: None,
        }
    }

    /// A control plane of this test's own (for tests that install other CRDs).
    pub fn start_own() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("bash")
            .arg(repo().join("scripts/control-plane.sh"))
            .arg("up")
            .arg(dir.path())
            .status()
            .expect("run scripts/control-plane.sh");
        assert!(status.success(), "control plane did not come up");
        Self {
            kubeconfig: dir.path().join("kubeconfig"),
            own: Some(dir),
        }
    }

    /// An admin client.
    pub async fn client(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("read kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("kubeconfig");
        Client::try_from(config).expect("client")
    }

    /// Applies the committed CRDs and waits until they are served.
    pub async fn install_crds(&self, client: &Client) {
        let text =
            fs::read_to_string(repo().join("deploy/crds/monitoring.coreos.com.yaml")).unwrap();
        let api: Api<CustomResourceDefinition> = Api::all(client.clone());
        for doc in text.split("\n---\n") {
            let crd: CustomResourceDefinition = serde_yaml_ng::from_str(doc).expect("CRD YAML");
            api.patch(
                &crd.name_any(),
                &PatchParams::apply("promreload-tests").force(),
                &Patch::Apply(&crd),
            )
            .await
            .expect("apply CRD");
        }
        for name in [
            "prometheuses.monitoring.coreos.com",
            "servicemonitors.monitoring.coreos.com",
            "podmonitors.monitoring.coreos.com",
            "probes.monitoring.coreos.com",
            "scrapeconfigs.monitoring.coreos.com",
            "prometheusrules.monitoring.coreos.com",
        ] {
            let mut established = false;
            for _ in 0..200 {
                let crd = api.get(name).await.expect("get CRD");
                established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if established {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(established, "CRD {name} not established");
        }
    }

    /// Starts the reconciler binary against this control plane.
    pub fn reconciler(&self, extra_env: &[(&str, &str)]) -> Reconciler {
        let logdir = tempfile::tempdir().unwrap();
        let log = logdir.path().join("reconciler.log");
        let child = Command::new(env!("CARGO_BIN_EXE_promreload-reconciler"))
            .env_clear()
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RECONCILER_LISTEN_ADDRESS", "127.0.0.1:0")
            .env("RECONCILER_LOG_LEVEL", "debug")
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start promreload-reconciler");
        let mut process = Process { child, log };
        let admin = poll(Duration::from_secs(20), || {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("reconciler exited with {status}: {}", process.log());
            }
            super::listen_address(&process.log())
        })
        .expect("reconciler logs its address");
        Reconciler {
            process,
            admin: format!("http://{admin}"),
            _logdir: logdir,
        }
    }
}

impl Cluster {
    /// The real prometheus-operator against this control plane, restricted to `ns`, naming
    /// `reloader_image` as its config reloader.
    pub fn operator(&self, ns: &str, reloader_image: &str) -> Process {
        self.operator_with(ns, reloader_image, &[])
    }

    /// [`Cluster::operator`] with more of the operator's flags.
    pub fn operator_with(&self, ns: &str, reloader_image: &str, extra: &[&str]) -> Process {
        let mut args = vec![
            format!("--prometheus-config-reloader={reloader_image}"),
            format!("--namespaces={ns}"),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        self.operator_args(&args)
    }

    /// The real prometheus-operator with exactly `args`, plus a free loopback port for its
    /// web server.
    pub fn operator_args(&self, args: &[String]) -> Process {
        let dir = tempfile::tempdir().unwrap().keep();
        let log = dir.join("operator.log");
        let child = Command::new(operator_dir().join("prometheus-operator"))
            .env_clear()
            .env("KUBECONFIG", &self.kubeconfig)
            .arg(format!(
                "--web.listen-address=127.0.0.1:{}",
                super::free_port()
            ))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start prometheus-operator");
        Process { child, log }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(dir) = &self.own {
            let _ = Command::new("bash")
                .arg(repo().join("scripts/control-plane.sh"))
                .arg("down")
                .arg(dir.path())
                .status();
        }
    }
}

/// A running reconciler.
pub struct Reconciler {
    pub process: Process,
    pub admin: String,
    _logdir: tempfile::TempDir,
}

impl Reconciler {
    /// One sample of `/metrics`, 0 when absent.
    pub async fn metric(&self, sample: &str) -> f64 {
        self.metrics_text()
            .await
            .lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// The `/metrics` text (empty when it does not answer).
    pub async fn metrics_text(&self) -> String {
        match reqwest::get(format!("{}/metrics", self.admin)).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Whether `/readyz` answers 200.
    pub async fn ready(&self) -> bool {
        reqwest::get(format!("{}/readyz", self.admin))
            .await
            .is_ok_and(|r| r.status() == 200)
    }
}

/// Polls an async condition every 50 ms until it holds, failing the test after 30 s.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    const WAIT: Duration = Duration::from_secs(30);
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {WAIT:?} waiting until {what}");
}

/// A name unique to this call: the process id, a per-process counter and
/// the clock's nanoseconds (a free port, used before, can be handed out twice
/// once the first test has closed it, and two tests then collided).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 100_000);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a namespace with labels.
pub async fn namespace(client: &Client, name: &str, labels: &[(&str, &str)]) {
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": labels.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()}
    }))
    .unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
}

/// Server-side applies a namespaced object given as YAML.
pub async fn apply<K>(client: &Client, namespace: &str, yaml: &str) -> K
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let obj: K = serde_yaml_ng::from_str(yaml).expect("object YAML");
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.patch(
        &obj.name_any(),
        &PatchParams::apply("promreload-tests").force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {yaml}: {e}"))
}

/// The decoded config in Secret `name`, if present.
pub async fn secret_config(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Option<(String, Secret)> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .ok()??;
    let bytes = secret.data.as_ref()?.get("prometheus.yaml.gz")?.0.clone();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .ok()?;
    Some((text, secret))
}

/// Runs kubectl against `cluster` with `stdin`; panics with kubectl's words if it fails, and
/// returns its stdout.
pub fn kubectl_run(cluster: &Cluster, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new(kubectl())
        .args(args)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The data of `prometheus-k8s-tls-assets-0` in `namespace` as text, if the Secret exists.
pub async fn tls_assets(
    client: &Client,
    namespace: &str,
) -> Option<std::collections::BTreeMap<String, String>> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt("prometheus-k8s-tls-assets-0")
        .await
        .ok()??;
    let data = secret.data.unwrap_or_default().into_iter();
    Some(
        data.map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect(),
    )
}

/// The job names in a config, in order.
pub fn job_names(config: &str) -> Vec<String> {
    config
        .lines()
        .filter_map(|l| l.strip_prefix("- job_name: "))
        .map(String::from)
        .collect()
}
