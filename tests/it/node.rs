//! A real node: the kubelet and containerd (`scripts/node.sh`) under the test control plane,
//! with kube-controller-manager and kube-scheduler, and images assembled locally from the
//! binaries under test (`scripts/image.py`) and the Prometheus built from Go modules. Nothing
//! is emulated: the kubelet mounts Secrets and ConfigMaps, swaps `..data` when they change,
//! and calls the probes. One node at a time (one per machine); each test brings its own.
//!
//! 1. deploy/ applied for real through `deploy/local` (the reconciler Deployment and the
//!    Prometheus StatefulSet), and a ServiceMonitor reaching Prometheus.
//! 2. prometheus-operator itself with our image as its config reloader, with the kubelet's
//!    default sync.
//! 3. deploy/'s StatefulSet with the kubelet's probes: Secret changes, a refused config, a
//!    stuck sidecar restarted by its liveness probe, the native-sidecar variant, and
//!    PrometheusRules rendered by the reconciler and evaluated by Prometheus. Changes to the
//!    StatefulSet for this test, and only these: local images, host networking on free ports
//!    (its Prometheus is reached on a known host port), no service-account token, an instance
//!    label per StatefulSet, the init container run as `/bin/prometheus-config-reloader`, the
//!    command prometheus-operator gives its reloader, and probe timing fast enough for a test.
//! 4. Every other kind of Pod the operator puts its reloader in (`kinds`): HTTPS, listenLocal
//!    with exec probes, Alertmanager, PrometheusAgent.
//! 5. kube-prometheus-stack, rendered by the real Helm with our reloader image (`stack`).
//! 6. The reconciler running Prometheus itself (`run`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::cluster::*;
use crate::support::{free_port, gzip, poll};
use serde_yaml_ng::Value;

mod kinds;
mod run;
mod stack;

const PROMRELOAD_IMAGE: &str = "docker.io/local/promreload:test";
const PROMETHEUS_IMAGE: &str = "docker.io/local/prometheus:test";
const BLACKBOX_IMAGE: &str = "docker.io/local/blackbox-exporter:test";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A node of this test's own, stopped (and its kernel settings restored) on drop.
struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    /// A node whose kubelet syncs Pods every second (volumes follow within about a second).
    fn up(cluster: &Cluster) -> Self {
        Self::up_with_sync(cluster, "1s")
    }

    /// A node whose kubelet syncs Pods every `sync` (`1m` is the kubelet's default).
    fn up_with_sync(cluster: &Cluster, sync: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("bash")
            .arg(repo().join("scripts/node.sh"))
            .arg("up")
            .arg(dir.path())
            .arg(&cluster.kubeconfig)
            .env("SYNC_FREQUENCY", sync)
            .status()
            .expect("run scripts/node.sh");
        let node = Self { dir };
        assert!(status.success(), "the node did not come up: {}", node.log());
        node
    }

    /// Builds an image from host files and imports it into the node's containerd.
    fn image(&self, name: &str, args: &[&str]) {
        let archive = self.dir.path().join("image.tar");
        let status = Command::new("python3")
            .arg(repo().join("scripts/image.py"))
            .args(["--name", name, "--out"])
            .arg(&archive)
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "image.py {name}");
        let status = Command::new("bash")
            .arg(repo().join("scripts/node.sh"))
            .arg("image")
            .arg(self.dir.path())
            .arg(name)
            .arg(&archive)
            .status()
            .unwrap();
        assert!(status.success(), "import {name}");
    }

    fn log(&self) -> String {
        let path = self.dir.path().join("kubelet.log");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Node {
    /// Imports the two images under test: promreload's (the Dockerfile, built by buildah)
    /// and the Prometheus built from Go modules.
    fn images(&self) {
        let status = Command::new("bash")
            .arg(repo().join("scripts/node.sh"))
            .arg("image")
            .arg(self.dir.path())
            .arg(PROMRELOAD_IMAGE)
            .arg(dockerfile_image())
            .status()
            .unwrap();
        assert!(status.success(), "import {PROMRELOAD_IMAGE}");
        self.prometheus_image(PROMETHEUS_IMAGE);
    }

    /// Imports the Prometheus built from Go modules as `name`. Like the real Prometheus
    /// image, it has a shell and wget: with `listenLocal` the operator probes Prometheus with
    /// `sh -c '... wget ...'` too.
    fn prometheus_image(&self, name: &str) {
        self.image(
            name,
            &[
                "--add",
                &format!("{}=/bin/prometheus", prometheus_binary().display()),
                "--shell",
                &debian_busybox(),
                "--entrypoint",
                "/bin/prometheus",
            ],
        );
    }

    /// Imports Debian's Alertmanager as `name`: with its default templates, which Debian's
    /// build reads from /usr/share, and like the real image, a shell and wget.
    fn alertmanager_image(&self, name: &str) {
        let templates = ["default.tmpl", "email.tmpl"]
            .map(|t| format!("/usr/share/prometheus/alertmanager/{t}"))
            .map(|path| format!("{path}={path}"));
        let shell = debian_busybox();
        self.image(
            name,
            &[
                "--add",
                "/usr/bin/prometheus-alertmanager=/bin/alertmanager",
                "--add",
                &templates[0],
                "--add",
                &templates[1],
                "--shell",
                &shell,
                "--entrypoint",
                "/bin/alertmanager",
            ],
        );
    }

    /// Imports Debian's blackbox exporter as `name`, with Debian's module file (`http_2xx`
    /// among them) at /etc/blackbox.yml.
    fn blackbox_image(&self, name: &str) {
        self.image(
            name,
            &[
                "--add",
                "/usr/bin/prometheus-blackbox-exporter=/bin/blackbox_exporter",
                "--add",
                "/etc/prometheus/blackbox.yml=/etc/blackbox.yml",
                "--entrypoint",
                "/bin/blackbox_exporter",
            ],
        );
    }
}

/// One node per machine: the tests that bring one up take turns.
fn one_node_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static NODE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    NODE.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/node.sh"))
            .arg("down")
            .arg(self.dir.path())
            .status();
    }
}

/// A Prometheus config whose only job is named `job`, gzipped as the reconciler writes it.
fn config_gz(job: &str) -> Vec<u8> {
    let config = format!(
        "global:\n  scrape_interval: 1s\n  external_labels:\n    pod: $(POD_NAME)\nscrape_configs:\n- job_name: {job}\n  static_configs:\n  - targets: ['127.0.0.1:1']\n"
    );
    gzip(config.as_bytes())
}

/// Writes Secret `prometheus-k8s` with `content` as its `prometheus.yaml.gz`.
fn put_config(cluster: &Cluster, dir: &Path, content: &[u8]) {
    let file = dir.join("prometheus.yaml.gz");
    std::fs::write(&file, content).unwrap();
    let secret = kubectl_run(
        cluster,
        &[
            "create",
            "secret",
            "generic",
            "prometheus-k8s",
            "-n",
            "monitoring",
            &format!("--from-file=prometheus.yaml.gz={}", file.display()),
            "--dry-run=client",
            "-o",
            "yaml",
        ],
        None,
    );
    kubectl_run(cluster, &["apply", "-f", "-"], Some(&secret));
}

/// deploy/'s Prometheus StatefulSet for this node, named `name` (its Pod is `<name>-0`).
///
/// With `native`, the sidecar runs as a native sidecar (Kubernetes 1.29+): an init container
/// with `restartPolicy: Always`, after the one-shot init container, so it starts before
/// Prometheus and stops after it.
fn statefulset(name: &str, prometheus_port: u16, reloader_port: u16, native: bool) -> String {
    let text = std::fs::read_to_string(repo().join("deploy/prometheus/statefulset.yaml")).unwrap();
    let mut statefulset: Value = serde_yaml_ng::from_str(&text).unwrap();
    let template = statefulset["spec"]["template"].clone();
    let mut spec = template["spec"].clone();
    let set = |m: &mut Value, k: &str, v: Value| {
        m.as_mapping_mut().unwrap().insert(k.into(), v);
    };
    set(&mut spec, "hostNetwork", true.into());
    set(&mut spec, "automountServiceAccountToken", false.into());
    set(&mut spec, "terminationGracePeriodSeconds", 2.into());
    let mut containers = Vec::new();
    for kind in ["initContainers", "containers"] {
        for mut c in spec[kind].as_sequence().unwrap().clone() {
            let name = c["name"].as_str().unwrap().to_string();
            set(&mut c, "imagePullPolicy", "Never".into());
            if name == "prometheus" {
                set(&mut c, "image", PROMETHEUS_IMAGE.into());
                let args = c["args"].as_sequence_mut().unwrap();
                args.push(format!("--web.listen-address=127.0.0.1:{prometheus_port}").into());
                c["ports"][0]["containerPort"] = prometheus_port.into();
            } else {
                set(&mut c, "image", PROMRELOAD_IMAGE.into());
                for env in c["env"].as_sequence_mut().unwrap() {
                    match env["name"].as_str().unwrap() {
                        "RELOADER_RELOAD_URL" => {
                            env["value"] =
                                format!("http://127.0.0.1:{prometheus_port}/-/reload").into();
                        }
                        "RELOADER_LISTEN_ADDRESS" if kind == "containers" => {
                            env["value"] = format!("127.0.0.1:{reloader_port}").into();
                        }
                        _ => {}
                    }
                }
                if kind == "containers" {
                    c["ports"][0]["containerPort"] = reloader_port.into();
                    // deploy/'s probe with test timing: fail fast, so a stuck sidecar is
                    // restarted within seconds rather than half a minute.
                    let probe = c["livenessProbe"].as_mapping_mut().unwrap();
                    for (k, v) in [
                        ("periodSeconds", 1),
                        ("failureThreshold", 2),
                        ("timeoutSeconds", 1),
                    ] {
                        probe.insert(k.into(), v.into());
                    }
                } else {
                    // As prometheus-operator's Pods run their reloader.
                    set(
                        &mut c,
                        "command",
                        vec![Value::from("/bin/prometheus-config-reloader")].into(),
                    );
                }
            }
            let kind = if native && name == "config-reloader" {
                set(&mut c, "restartPolicy", "Always".into());
                "initContainers"
            } else {
                kind
            };
            containers.push((kind, c));
        }
    }
    for kind in ["initContainers", "containers"] {
        let list: Vec<Value> = containers
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, c)| c.clone())
            .collect();
        set(&mut spec, kind, Value::Sequence(list));
    }
    // Each StatefulSet selects its own Pods.
    let instance = |labels: &mut Value| set(labels, "app.kubernetes.io/instance", name.into());
    instance(&mut statefulset["spec"]["selector"]["matchLabels"]);
    instance(&mut statefulset["spec"]["template"]["metadata"]["labels"]);
    statefulset["metadata"]["name"] = name.into();
    statefulset["spec"]["serviceName"] = name.into();
    statefulset["spec"]["template"]["spec"] = spec;
    serde_yaml_ng::to_string(&statefulset).unwrap()
}

/// Waits until Pod `pod` in `monitoring` is Ready, through the kubelet's own probes; fails
/// with what `kubectl describe` and the kubelet say if it is not within two minutes.
fn wait_ready(cluster: &Cluster, node: &Node, pod: &str) {
    wait_ready_in(cluster, node, "monitoring", pod);
}

/// [`wait_ready`] for a Pod in namespace `ns`.
fn wait_ready_in(cluster: &Cluster, node: &Node, ns: &str, pod: &str) {
    let ready = std::panic::catch_unwind(|| {
        let target = format!("pod/{pod}");
        let args = [
            "wait",
            "-n",
            ns,
            "--for=condition=Ready",
            &target,
            "--timeout=120s",
        ];
        kubectl_run(cluster, &args, None)
    });
    if ready.is_err() {
        let describe = kubectl_run(cluster, &["describe", "pod", "-n", ns, pod], None);
        panic!(
            "{pod} did not become Ready:\n{describe}\n{}\n{}",
            container_logs(ns, pod),
            node.log()
        );
    }
}

/// The last lines of each container log of Pod `ns/pod`, as the kubelet keeps them.
fn container_logs(ns: &str, pod: &str) -> String {
    let mut out = String::new();
    let prefix = format!("{ns}_{pod}_");
    let Ok(pods) = std::fs::read_dir("/var/log/pods") else {
        return out;
    };
    for dir in pods.flatten() {
        if !dir.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        for container in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for log in std::fs::read_dir(container.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let text = std::fs::read_to_string(log.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(10).collect();
                out.push_str(&format!("== {}\n", log.path().display()));
                for line in tail.into_iter().rev() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// Writes a config whose job is `job` and waits (a minute at most) until the Prometheus on
/// `port` has loaded it: the time from the write, or `None`.
fn goes_live(cluster: &Cluster, dir: &Path, port: u16, job: &str) -> Option<Duration> {
    let start = Instant::now();
    put_config(cluster, dir, &config_gz(job));
    let wanted = format!("job_name: {job}");
    poll(Duration::from_secs(60), || {
        loaded_config(port)
            .filter(|c| c.contains(&wanted))
            .map(|_| start.elapsed())
    })
}

/// The Prometheus's loaded config, if it answers.
fn loaded_config(port: u16) -> Option<String> {
    let body = reqwest::blocking::get(format!("http://127.0.0.1:{port}/api/v1/status/config"))
        .ok()?
        .text()
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["yaml"].as_str().map(str::to_string)
}

/// The image the Dockerfile builds, as an OCI archive: `PROMRELOAD_IMAGE_ARCHIVE` (what
/// `scripts/test.sh` built with `scripts/dockerfile.sh`), or built here once per test run
/// (buildah, its layers cached, so only what changed is rebuilt).
fn dockerfile_image() -> &'static Path {
    static ARCHIVE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ARCHIVE.get_or_init(|| {
        if let Some(path) = std::env::var_os("PROMRELOAD_IMAGE_ARCHIVE") {
            return PathBuf::from(path);
        }
        let dir = tempfile::tempdir().unwrap().keep();
        let archive = dir.join("promreload.tar");
        let out = Command::new("bash")
            .arg(repo().join("scripts/dockerfile.sh"))
            .arg("build")
            .arg(&archive)
            .arg(PROMRELOAD_IMAGE)
            .output()
            .expect("run scripts/dockerfile.sh");
        assert!(
            out.status.success(),
            "building the Dockerfile: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        archive
    })
}

/// The files of an OCI archive's image (its one manifest's layers, in order; later layers
/// win), as `tar -tv` lists them, and its config.
fn image_contents(archive: &Path) -> (Vec<String>, serde_json::Value, u64) {
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap()
        .success();
    assert!(ok, "unpack {}", archive.display());
    let blob = |digest: &str| {
        dir.path()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let json = |path: PathBuf| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let index = json(dir.path().join("index.json"));
    let manifest = json(blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let config = json(blob(manifest["config"]["digest"].as_str().unwrap()));
    let mut entries = Vec::new();
    let mut size = 0;
    for layer in manifest["layers"].as_array().unwrap() {
        size += layer["size"].as_u64().unwrap();
        let out = Command::new("tar")
            .arg("-tvzf")
            .arg(blob(layer["digest"].as_str().unwrap()))
            .output()
            .unwrap();
        entries.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string),
        );
    }
    (entries, config, size)
}

/// Debian's busybox, as the Dockerfile's build stage installs it (`scripts/busybox.sh`).
fn debian_busybox() -> String {
    built("busybox.sh").display().to_string()
}

/// Asserts that no container of Pod `ns/pod` has restarted.
fn assert_no_restarts(cluster: &Cluster, ns: &str, pod: &str) {
    let restarts = pod_field(
        cluster,
        ns,
        pod,
        "{.status.containerStatuses[*].restartCount}",
    );
    assert!(
        restarts.split_whitespace().all(|n| n == "0"),
        "{pod} restarts: {restarts}"
    );
}

/// The Dockerfile, built for real (buildah, the stand-in bases of `scripts/dockerfile.sh`),
/// holds what the operator's Pods run: the static binaries, the operator's command as a link,
/// the shell and wget for its exec probes, user 65532, the sidecar as entrypoint.
#[test]
fn the_dockerfile_builds_the_image_the_operator_runs() {
    // Cargo refuses a manifest whose declared targets are missing: the dependency layer
    // stubs every one.
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    for section in ["[[test]]", "[[bench]]"] {
        let dir = if section == "[[test]]" {
            "tests"
        } else {
            "benches"
        };
        for block in manifest.split(section).skip(1) {
            let name = block
                .lines()
                .find_map(|l| l.strip_prefix("name = "))
                .unwrap()
                .trim_matches('"');
            let stub = format!("{dir}/{name}.rs");
            assert!(dockerfile.contains(&stub), "the Dockerfile stubs {stub}");
        }
    }
    let (entries, config, size) = image_contents(dockerfile_image());
    let has = |suffix: &str| entries.iter().any(|e| e.ends_with(suffix));
    for want in [
        " promreload",
        " promreload-reconciler",
        " bin/prometheus-config-reloader -> /promreload",
        " bin/sh -> busybox",
        " bin/wget -> busybox",
        " bin/busybox",
        " etc/passwd",
        " etc/ssl/certs/ca-certificates.crt",
    ] {
        assert!(has(want), "{want:?} in the image:\n{}", entries.join("\n"));
    }
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/promreload"])
    );
    eprintln!(
        "image: {} entries, {:.1} MiB compressed",
        entries.len(),
        size as f64 / 1048576.0
    );
}

fn prometheus_binary() -> PathBuf {
    k8s_prometheus_dir().join("prometheus")
}

#[test]
fn deploys_prometheus_with_the_sidecar_in_a_real_pod_and_follows_secret_changes() {
    let _node_turn = one_node_at_a_time();
    let cluster = Cluster::start_own();
    let node = Node::up(&cluster);
    node.images();
    let kubectl = |args: &[&str], stdin: Option<&str>| kubectl_run(&cluster, args, stdin);
    kubectl(&["create", "namespace", "monitoring"], None);
    kubectl(
        &[
            "create",
            "serviceaccount",
            "prometheus-k8s",
            "-n",
            "monitoring",
        ],
        None,
    );
    let work = tempfile::tempdir().unwrap();
    put_config(&cluster, work.path(), &config_gz("first"));
    kubectl(
        &[
            "create",
            "secret",
            "generic",
            "prometheus-k8s-tls-assets-0",
            "-n",
            "monitoring",
        ],
        None,
    );
    let (prometheus_port, reloader_port) = (free_port(), free_port());
    let created = Instant::now();
    kubectl(
        &["apply", "-f", "-"],
        Some(&statefulset(
            "prometheus-k8s",
            prometheus_port,
            reloader_port,
            false,
        )),
    );
    // Ready through the kubelet's own probes: Prometheus's /-/ready and the sidecar's /readyz.
    wait_ready(&cluster, &node, "prometheus-k8s-0");
    eprintln!("StatefulSet applied -> Pod Ready: {:?}", created.elapsed());
    let config = loaded_config(prometheus_port).expect("Prometheus answers on the host network");
    assert!(config.contains("job_name: first"), "{config}");
    assert!(
        config.contains("pod: prometheus-k8s-0"),
        "$(POD_NAME) expanded from the Pod's env: {config}"
    );

    // The Secret changes; the kubelet swaps `..data`; the sidecar renders and reloads.
    let latency = goes_live(&cluster, work.path(), prometheus_port, "second")
        .expect("the new config reaches Prometheus");
    eprintln!("Secret write -> config live in Prometheus (syncFrequency 1s): {latency:?}");

    // A config Prometheus would not load: the sidecar refuses it, the last good one stays.
    put_config(&cluster, work.path(), b"\x1f\x8b not really gzip");
    let status = poll(Duration::from_secs(30), || {
        let body = reqwest::blocking::get(format!("http://127.0.0.1:{reloader_port}/status"))
            .ok()?
            .text()
            .ok()?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["last_apply_error"]
            .as_str()
            .filter(|e| !e.is_empty())
            .map(str::to_string)
    });
    assert!(status.is_some(), "the sidecar reports the bad input");
    let config = loaded_config(prometheus_port).unwrap();
    assert!(
        config.contains("job_name: second"),
        "the last good config stays"
    );
    let restarts = kubectl(
        &[
            "get",
            "pod",
            "-n",
            "monitoring",
            "prometheus-k8s-0",
            "-o",
            "jsonpath={.status.containerStatuses[*].restartCount}",
        ],
        None,
    );
    assert_eq!(restarts.trim(), "0 0", "no container restarted");

    // A stuck sidecar (stopped by the kernel): its /healthz stops answering, and the
    // kubelet's liveness probe restarts it; the new one serves the next change.
    let sidecar = sidecar_pid().expect("the sidecar's process");
    let stopped = Instant::now();
    Command::new("kill")
        .args(["-STOP", &sidecar.to_string()])
        .status()
        .unwrap();
    let restarted = poll(Duration::from_secs(60), || {
        let count = kubectl(
            &[
                "get",
                "pod",
                "-n",
                "monitoring",
                "prometheus-k8s-0",
                "-o",
                "jsonpath={.status.containerStatuses[?(@.name==\"config-reloader\")].restartCount}",
            ],
            None,
        );
        (count.trim() == "1").then(|| stopped.elapsed())
    });
    let restarted = restarted.expect("the kubelet restarted the stuck sidecar");
    eprintln!("sidecar stopped -> restarted by the liveness probe: {restarted:?}");
    wait_ready(&cluster, &node, "prometheus-k8s-0");
    goes_live(&cluster, work.path(), prometheus_port, "third")
        .expect("the restarted sidecar serves the next change");

    // The same Pod with the sidecar as a native sidecar: Ready, and it follows changes.
    let (native_port, native_reloader) = (free_port(), free_port());
    let created = Instant::now();
    kubectl(
        &["apply", "-f", "-"],
        Some(&statefulset(
            "prometheus-native",
            native_port,
            native_reloader,
            true,
        )),
    );
    wait_ready(&cluster, &node, "prometheus-native-0");
    eprintln!(
        "native-sidecar StatefulSet applied -> Pod Ready: {:?}",
        created.elapsed()
    );
    let config = loaded_config(native_port).expect("the native-sidecar Prometheus answers");
    assert!(config.contains("job_name: third"), "{config}");
    let latency = goes_live(&cluster, work.path(), native_port, "fourth")
        .expect("the native sidecar serves changes");
    eprintln!("native sidecar: Secret write -> config live: {latency:?}");

    // PrometheusRules, end to end: the reconciler (a host process, as in the other tests)
    // renders deploy/monitoring's PrometheusRule, which deploy/'s Prometheus object selects,
    // into ConfigMap prometheus-k8s-rulefiles-0 and the config; the kubelet updates the
    // mounted ConfigMap, the sidecar (watching it) reloads, and Prometheus evaluates the rules.
    let crds = repo().join("deploy/crds/monitoring.coreos.com.yaml");
    kubectl(
        &["apply", "--server-side", "-f", crds.to_str().unwrap()],
        None,
    );
    kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "crd/prometheuses.monitoring.coreos.com",
            "crd/prometheusrules.monitoring.coreos.com",
        ],
        None,
    );
    let deployed = |file: &str| repo().join("deploy").join(file).display().to_string();
    kubectl(
        &["apply", "-f", &deployed("prometheus/prometheus.yaml")],
        None,
    );
    let _reconciler = cluster.reconciler(&[("RECONCILER_NAMESPACE", "monitoring")]);
    let start = Instant::now();
    kubectl(
        &["apply", "-f", &deployed("monitoring/prometheusrule.yaml")],
        None,
    );
    let alerts = poll(Duration::from_secs(90), || {
        let groups = rule_groups(prometheus_port)?;
        groups
            .iter()
            .any(|(g, _)| g == "promreload-sidecar")
            .then_some(groups)
    })
    .expect("Prometheus loads deploy/monitoring's rules");
    eprintln!(
        "PrometheusRule applied -> its {} groups loaded by Prometheus: {:?}",
        alerts.len(),
        start.elapsed()
    );
    let start = Instant::now();
    let rule = "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: node-test, namespace: monitoring, labels: {prometheus: k8s}}\nspec:\n  groups:\n  - name: node-test\n    interval: 1s\n    rules: [{record: promreload_node_test, expr: vector(1)}]\n";
    kubectl(&["apply", "-f", "-"], Some(rule));
    poll(Duration::from_secs(90), || {
        let groups = rule_groups(prometheus_port)?;
        groups
            .iter()
            .any(|(g, health)| g == "node-test" && health == "ok")
            .then_some(())
    })
    .expect("the new rule is evaluated");
    eprintln!(
        "second PrometheusRule applied -> evaluated (health ok) by Prometheus: {:?}",
        start.elapsed()
    );
    let reloads = reqwest::blocking::get(format!("http://127.0.0.1:{reloader_port}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        reloads.contains("reloader_last_reload_successful 1"),
        "{reloads}"
    );
}

/// The rule groups the Prometheus on `port` has loaded, each with the health of its first
/// rule (`ok` once evaluated).
fn rule_groups(port: u16) -> Option<Vec<(String, String)>> {
    let body = reqwest::blocking::get(format!("http://127.0.0.1:{port}/api/v1/rules"))
        .ok()?
        .text()
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let groups = v["data"]["groups"].as_array()?;
    Some(
        groups
            .iter()
            .map(|g| {
                let name = g["name"].as_str().unwrap_or_default().to_string();
                let health = g["rules"][0]["health"].as_str().unwrap_or_default();
                (name, health.to_string())
            })
            .collect(),
    )
}

/// The host PID of the sidecar: the one promreload process in the kubelet's cgroups (the init
/// container has exited; promreloads of other tests run outside them).
fn sidecar_pid() -> Option<u32> {
    let mut found = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let in_container = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .is_ok_and(|cgroups| cgroups.contains("/kubepods"));
        if cmdline == b"/promreload\0" && in_container {
            assert!(found.is_none(), "one sidecar");
            found = Some(pid);
        }
    }
    found
}

/// prometheus-operator itself (v0.94.1, built from its Go module) told to use our image as
/// its config reloader, as a user would try it: the Prometheus Pod it generates (on the Pod
/// network, the operator's StatefulSet unchanged) becomes Ready with our binary as init
/// container and sidecar under the operator's own command and arguments, and a ServiceMonitor
/// change reaches Prometheus through the operator's Secret, the kubelet and our sidecar.
#[test]
fn the_real_operator_runs_our_image_as_its_config_reloader() {
    let _node_turn = one_node_at_a_time();
    let cluster = Cluster::start_own();
    // The kubelet's default sync, as users run it: the ServiceMonitor's way to Prometheus
    // then waits for the kubelet's next sync of the Pod.
    let node = Node::up_with_sync(&cluster, "1m");
    node.images();
    let kubectl = |args: &[&str], stdin: Option<&str>| kubectl_run(&cluster, args, stdin);
    install_operator_crds(&cluster);
    kubectl(&["create", "namespace", "monitoring"], None);
    let _operator = cluster.operator("monitoring", PROMRELOAD_IMAGE);
    let prometheus = format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: k8s, namespace: monitoring}}\nspec:\n  image: {PROMETHEUS_IMAGE}\n  replicas: 1\n  scrapeInterval: 5s\n  serviceMonitorSelector: {{}}\n"
    );
    let created = Instant::now();
    kubectl(&["apply", "-f", "-"], Some(&prometheus));
    wait_created_and_ready(&cluster, &node, "monitoring", "prometheus-k8s-0");
    eprintln!(
        "operator: Prometheus object applied -> its Pod Ready with our reloader: {:?}",
        created.elapsed()
    );
    let get = |path: &str| pod_field(&cluster, "monitoring", "prometheus-k8s-0", path);
    // The operator's containers, as it wrote them, run our image.
    for (kind, name) in [
        ("initContainers", "init-config-reloader"),
        ("containers", "config-reloader"),
    ] {
        let image = get(&format!("{{.spec.{kind}[?(@.name==\"{name}\")].image}}"));
        assert_eq!(image, PROMRELOAD_IMAGE, "{name}");
        let command = get(&format!("{{.spec.{kind}[?(@.name==\"{name}\")].command}}"));
        assert!(
            command.contains("/bin/prometheus-config-reloader"),
            "{name}: {command}"
        );
    }
    let ip = get("{.status.podIP}");
    assert!(
        ip.starts_with("10.244.77."),
        "a Pod-network address: {ip:?}"
    );
    let api_ip = api_mode_prometheus(&cluster, &node);
    let config = poll(Duration::from_secs(30), || pod_config(&ip))
        .expect("Prometheus answers on its Pod address");
    assert!(
        config.contains("prometheus_replica: prometheus-k8s-0"),
        "$(POD_NAME) expanded: {config}"
    );

    let start = Instant::now();
    let service_monitor = "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: web, namespace: monitoring}\nspec:\n  selector: {matchLabels: {app: web}}\n  endpoints: [{port: web}]\n";
    kubectl(&["apply", "-f", "-"], Some(service_monitor));
    let live = job_goes_live(&ip, "serviceMonitor/monitoring/web/0", start);
    eprintln!(
        "operator: first ServiceMonitor written -> job live in Prometheus (our sidecar, the kubelet's default syncFrequency 1m, Pod just started): {live:?}"
    );
    // Once the Pod's start-up syncs are over, a change waits for the kubelet's periodic sync
    // in the volume mode; API mode (the second Prometheus) reads it from the API at once.
    let start = Instant::now();
    kubectl(
        &["apply", "-f", "-"],
        Some(&service_monitor.replace("name: web,", "name: web2,")),
    );
    let job = "serviceMonitor/monitoring/web2/0";
    let (volume, api) = std::thread::scope(|s| {
        let volume = s.spawn(|| job_goes_live(&ip, job, start));
        let api = s.spawn(|| job_goes_live(&api_ip, job, start));
        (volume.join().unwrap(), api.join().unwrap())
    });
    eprintln!(
        "operator: second ServiceMonitor written -> job live: volume mode (kubelet's default syncFrequency 1m) {volume:?}, API mode {api:?}"
    );
    assert!(
        api < Duration::from_secs(10),
        "API mode does not wait for the kubelet: {api:?}"
    );
    let metrics = reqwest::blocking::get(format!("http://{ip}:8080/metrics"))
        .and_then(|r| r.text())
        .expect("the sidecar's metrics on the operator's port");
    assert!(
        metrics.contains("reloader_last_reload_successful 1"),
        "{metrics}"
    );
    assert_no_restarts(&cluster, "monitoring", "prometheus-k8s-0");
}

/// The real operator's CRDs (every kind it manages), established.
fn install_operator_crds(cluster: &Cluster) {
    let crds = operator_dir().join("crds");
    let apply = ["apply", "--server-side", "-f", crds.to_str().unwrap()];
    kubectl_run(cluster, &apply, None);
    let wait = ["wait", "--for=condition=Established", "crd", "--all"];
    kubectl_run(cluster, &wait, None);
}

/// The image of prometheus-operator's own config reloader, from its Go binary.
const GO_RELOADER_IMAGE: &str = "docker.io/local/prometheus-config-reloader:test";

/// prometheus-operator's own config reloader (v0.94.1, built from its Go module by
/// `scripts/anchors.sh`, in a local image) beside promreload, end to end on one node with the
/// kubelet's default sync: two operators, one per namespace, each with one Prometheus; the
/// same ServiceMonitor written to both namespaces at once; the time until its job is live in
/// each. A measurement of minutes (the Go reloader may wait for its 3-minute re-check), so it
/// is run by hand: `cargo test --test it node:: -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement of minutes: run by hand (see the README's comparison)"]
fn the_operators_own_reloader_beside_ours() {
    let _node_turn = one_node_at_a_time();
    let cluster = Cluster::start_own();
    let node = Node::up_with_sync(&cluster, "1m");
    node.images();
    let anchors = Command::new("bash")
        .arg(repo().join("scripts/anchors.sh"))
        .arg("build")
        .output()
        .unwrap();
    assert!(anchors.status.success(), "scripts/anchors.sh build");
    let go_reloader = Path::new(String::from_utf8_lossy(&anchors.stdout).trim())
        .join("prometheus-config-reloader");
    node.image(
        GO_RELOADER_IMAGE,
        &[
            "--add",
            &format!("{}=/bin/prometheus-config-reloader", go_reloader.display()),
            "--entrypoint",
            "/bin/prometheus-config-reloader",
        ],
    );
    install_operator_crds(&cluster);
    let mut operators = Vec::new();
    let mut ips = Vec::new();
    for (ns, image) in [("ours", PROMRELOAD_IMAGE), ("go", GO_RELOADER_IMAGE)] {
        kubectl_run(&cluster, &["create", "namespace", ns], None);
        operators.push(cluster.operator(ns, image));
        let prometheus = format!(
            "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: k8s, namespace: {ns}}}\nspec:\n  image: {PROMETHEUS_IMAGE}\n  replicas: 1\n  scrapeInterval: 5s\n  serviceMonitorSelector: {{}}\n"
        );
        kubectl_run(&cluster, &["apply", "-f", "-"], Some(&prometheus));
    }
    for ns in ["ours", "go"] {
        wait_created_and_ready(&cluster, &node, ns, "prometheus-k8s-0");
        ips.push(pod_field(
            &cluster,
            ns,
            "prometheus-k8s-0",
            "{.status.podIP}",
        ));
    }
    // Two rounds: the first right after the Pods started (the kubelet still syncs them at
    // start-up), the second as a change to a running Prometheus.
    for round in ["web", "web2"] {
        let start = Instant::now();
        for ns in ["ours", "go"] {
            let service_monitor = format!(
                "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {{name: {round}, namespace: {ns}}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  endpoints: [{{port: web}}]\n"
            );
            kubectl_run(&cluster, &["apply", "-f", "-"], Some(&service_monitor));
        }
        let live: Vec<Option<Duration>> = std::thread::scope(|s| {
            let waits: Vec<_> = ["ours", "go"]
                .iter()
                .zip(&ips)
                .map(|(ns, ip)| {
                    let wanted = format!("job_name: serviceMonitor/{ns}/{round}/0");
                    s.spawn(move || {
                        poll(Duration::from_secs(330), || {
                            pod_config(ip)
                                .filter(|c| c.contains(&wanted))
                                .map(|_| start.elapsed())
                        })
                    })
                })
                .collect();
            waits.into_iter().map(|w| w.join().unwrap()).collect()
        });
        eprintln!(
            "ServiceMonitor {round} written -> job live, the kubelet's default sync (1m): promreload {:?}, prometheus-config-reloader v0.94.1 {:?} (None: not within 330 s)",
            live[0], live[1]
        );
        assert!(live[0].is_some(), "promreload never loaded {round}");
    }
    for ns in ["ours", "go"] {
        let restarts = pod_field(
            &cluster,
            ns,
            "prometheus-k8s-0",
            "{range .status.containerStatuses[*]}{.name}={.restartCount} {end}",
        );
        let reloader = kubectl_run(
            &cluster,
            &[
                "logs",
                "-n",
                ns,
                "prometheus-k8s-0",
                "-c",
                "config-reloader",
                "--tail=8",
            ],
            None,
        );
        eprintln!("{ns}: restarts {restarts}\n{reloader}");
    }
    drop(operators);
}

/// A second Prometheus from the real operator, `api`, whose config-reloader sidecar (our
/// image) reads Secret `prometheus-api` through the API (deploy/api-mode's Role, for its own
/// service account) instead of the mounted volume. Pods reach the API server as they would
/// the `kubernetes` Service: at the Pod network's gateway, where this test forwards to the
/// API server's loopback port. Returns the Pod's address once it is Ready.
/// The loopback port of the test control plane's API server (its kubeconfig's).
fn api_port(cluster: &Cluster) -> u16 {
    std::fs::read_to_string(&cluster.kubeconfig)
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://127.0.0.1:"))
        .and_then(|p| p.parse().ok())
        .expect("the API server's loopback port")
}

fn api_mode_prometheus(cluster: &Cluster, node: &Node) -> String {
    let kubectl = |args: &[&str], stdin: Option<&str>| kubectl_run(cluster, args, stdin);
    let gateway_port = forward("10.244.77.1", ("127.0.0.1", api_port(cluster)));
    kubectl(
        &[
            "-n",
            "monitoring",
            "create",
            "serviceaccount",
            "prometheus-api",
        ],
        None,
    );
    let rbac = std::fs::read_to_string(repo().join("deploy/api-mode/rbac.yaml"))
        .unwrap()
        .replace("prometheus-k8s", "prometheus-api");
    kubectl(&["apply", "-f", "-"], Some(&rbac));
    let prometheus = format!(
        r#"apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata: {{name: api, namespace: monitoring}}
spec:
  image: {PROMETHEUS_IMAGE}
  replicas: 1
  scrapeInterval: 5s
  serviceMonitorSelector: {{}}
  serviceAccountName: prometheus-api
  containers:
  - name: config-reloader
    args:
    - --listen-address=:8080
    - --reload-url=http://localhost:9090/-/reload
    - --config-secret=prometheus-api
    - --config-envsubst-file=/etc/prometheus/config_out/prometheus.env.yaml
    env:
    - {{name: KUBERNETES_SERVICE_HOST, value: "10.244.77.1"}}
    - {{name: KUBERNETES_SERVICE_PORT, value: "{gateway_port}"}}
"#
    );
    kubectl(&["apply", "-f", "-"], Some(&prometheus));
    wait_created_and_ready(cluster, node, "monitoring", "prometheus-api-0");
    let get = |path: &str| pod_field(cluster, "monitoring", "prometheus-api-0", path);
    let args = get("{.spec.containers[?(@.name==\"config-reloader\")].args}");
    assert!(args.contains("--config-secret=prometheus-api"), "{args}");
    let ip = get("{.status.podIP}");
    let status = poll(Duration::from_secs(30), || {
        let body = reqwest::blocking::get(format!("http://{ip}:8080/status"))
            .ok()?
            .text()
            .ok()?;
        let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
        doc["secret"]["resource_version"].is_string().then_some(doc)
    })
    .expect("the API-mode sidecar reads its Secret from the API");
    assert_eq!(status["secret"]["secret"], "monitoring/prometheus-api");
    ip
}

/// A JSONPath `path` of Pod `pod` in namespace `ns`.
fn pod_field(cluster: &Cluster, ns: &str, pod: &str, path: &str) -> String {
    let jsonpath = format!("jsonpath={path}");
    let args = ["get", "pod", "-n", ns, pod, "-o", &jsonpath];
    kubectl_run(cluster, &args, None)
}

/// Waits (a minute at most) until the operator has created Pod `pod` in `ns`, then until it
/// is Ready.
fn wait_created_and_ready(cluster: &Cluster, node: &Node, ns: &str, pod: &str) {
    let wanted = format!("pod/{pod}");
    let created = poll(Duration::from_secs(60), || {
        let pods = kubectl_run(cluster, &["get", "pods", "-n", ns, "-o", "name"], None);
        pods.lines().any(|l| l == wanted).then_some(())
    });
    assert!(created.is_some(), "the operator created no Pod {ns}/{pod}");
    wait_ready_in(cluster, node, ns, pod);
}

/// Forwards TCP connections on `listen_ip` (a free port, returned) to `target`, for as long as
/// the test runs.
fn forward(listen_ip: &str, target: (&'static str, u16)) -> u16 {
    let listener =
        std::net::TcpListener::bind((listen_ip, 0)).expect("listen on the Pod network's gateway");
    let port = listener.local_addr().unwrap().port();
    serve_forward(listener, target);
    port
}

/// [`forward`] from a port of `listen_ip` chosen now, listened on as soon as the address
/// exists (the Pod network's gateway appears with the first Pod on it).
fn forward_once_up(listen_ip: &'static str, target: (&'static str, u16)) -> u16 {
    let port = free_port();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match std::net::TcpListener::bind((listen_ip, port)) {
                Ok(listener) => return serve_forward(listener, target),
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => panic!("cannot listen on {listen_ip}:{port}: {e}"),
            }
        }
    });
    port
}

/// Forwards each connection `listener` accepts to `target`, on threads of its own.
fn serve_forward(listener: std::net::TcpListener, target: (&'static str, u16)) {
    use std::net::TcpStream;
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(target) else {
                continue;
            };
            let (mut client_r, mut server_w) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_r, &mut server_w);
                let _ = server_w.shutdown(std::net::Shutdown::Write);
            });
            let (mut server_r, mut client_w) = (server, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server_r, &mut client_w);
                let _ = client_w.shutdown(std::net::Shutdown::Write);
            });
        }
    });
}

/// `to` as a path relative to directory `from` (both absolute).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let (from, to) = (from.canonicalize().unwrap(), to.canonicalize().unwrap());
    let (from, to): (Vec<_>, Vec<_>) = (from.components().collect(), to.components().collect());
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path: PathBuf = from[common..].iter().map(|_| "..").collect();
    path.extend(&to[common..]);
    path
}

/// Waits (three minutes at most: the kubelet's default sync is a minute, plus jitter) until
/// the Prometheus at Pod address `ip` has loaded `job`; returns the time since `start`.
fn job_goes_live(ip: &str, job: &str, start: Instant) -> Duration {
    let wanted = format!("job_name: {job}");
    poll(Duration::from_secs(180), || {
        pod_config(ip)
            .filter(|c| c.contains(&wanted))
            .map(|_| start.elapsed())
    })
    .unwrap_or_else(|| panic!("{job} did not reach Prometheus"))
}

/// The active targets of the Prometheus at Pod address `ip` (for failure messages).
fn targets(ip: &str) -> String {
    reqwest::blocking::get(format!("http://{ip}:9090/api/v1/targets?state=active"))
        .and_then(|r| r.text())
        .unwrap_or_else(|e| e.to_string())
}

/// The first series of an instant query to the Prometheus at Pod address `ip`.
fn query_result(ip: &str, query: &str) -> Option<serde_json::Value> {
    let body = reqwest::blocking::Client::new()
        .get(format!("http://{ip}:9090/api/v1/query"))
        .query(&[("query", query)])
        .send()
        .ok()?
        .text()
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"].as_array()?.first().cloned()
}

/// The value of the first series of an instant query, as Prometheus writes it (`"1"`).
fn instant_query(ip: &str, query: &str) -> Option<String> {
    query_result(ip, query)?["value"][1]
        .as_str()
        .map(str::to_string)
}

/// The loaded config of the Prometheus at Pod address `ip` (port 9090, the operator's).
fn pod_config(ip: &str) -> Option<String> {
    let body = reqwest::blocking::get(format!("http://{ip}:9090/api/v1/status/config"))
        .ok()?
        .text()
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["yaml"].as_str().map(str::to_string)
}

/// `kubectl apply -k` of deploy/ itself through `deploy/local` (local images, the reconciler
/// on the host network), plus this machine's API server address and a free admin port:
/// the reconciler Deployment and the Prometheus StatefulSet become Ready through the
/// kubelet's probes, the reconciler (in its Pod, with its ServiceAccount's token and RBAC)
/// writes the config, and a ServiceMonitor created afterwards is a job in that Prometheus.
#[test]
fn deploy_applied_for_real_follows_a_service_monitor() {
    let _node_turn = one_node_at_a_time();
    let cluster = Cluster::start_own();
    let node = Node::up(&cluster);
    node.images();
    let kubectl = |args: &[&str], stdin: Option<&str>| kubectl_run(&cluster, args, stdin);
    let api_port = api_port(&cluster);
    let admin_port = free_port();
    // Prometheus's Kubernetes discovery reaches the API server as it would the `kubernetes`
    // Service: at the Pod network's gateway, forwarded to the API server's loopback port.
    let gateway_port = forward_once_up("10.244.77.1", ("127.0.0.1", api_port));
    // kustomize takes a base only by a relative path.
    let overlay = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let kustomization = format!(
        r#"apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- {local}
patches:
- target: {{kind: Deployment, name: promreload-reconciler}}
  patch: |-
    - op: replace
      path: /spec/template/spec/containers/0/env/0
      value: {{name: RECONCILER_LISTEN_ADDRESS, value: "127.0.0.1:{admin_port}"}}
    - op: replace
      path: /spec/template/spec/containers/0/ports/0/containerPort
      value: {admin_port}
    - op: add
      path: /spec/template/spec/containers/0/env/-
      value: {{name: KUBERNETES_SERVICE_HOST, value: "127.0.0.1"}}
    - op: add
      path: /spec/template/spec/containers/0/env/-
      value: {{name: KUBERNETES_SERVICE_PORT, value: "{api_port}"}}
- target: {{kind: StatefulSet, name: prometheus-k8s}}
  patch: |-
    - op: test
      path: /spec/template/spec/containers/0/name
      value: prometheus
    - op: add
      path: /spec/template/spec/containers/0/env
      value:
      - {{name: KUBERNETES_SERVICE_HOST, value: "10.244.77.1"}}
      - {{name: KUBERNETES_SERVICE_PORT, value: "{gateway_port}"}}
"#,
        local = relative(overlay.path(), &repo().join("deploy/local")).display()
    );
    std::fs::write(overlay.path().join("kustomization.yaml"), kustomization).unwrap();
    // The CRDs first, established before objects of their kinds are applied (as by hand).
    let applied = Instant::now();
    let crds = repo().join("deploy/crds");
    kubectl(
        &["apply", "--server-side", "-k", crds.to_str().unwrap()],
        None,
    );
    kubectl(
        &["wait", "--for=condition=Established", "crd", "--all"],
        None,
    );
    kubectl(
        &[
            "apply",
            "--server-side",
            "-k",
            overlay.path().to_str().unwrap(),
        ],
        None,
    );
    let reconciler_pod = poll(Duration::from_secs(60), || {
        let out = kubectl(
            &[
                "get",
                "pods",
                "-n",
                "monitoring",
                "-l",
                "app.kubernetes.io/name=promreload-reconciler",
                "-o",
                "name",
            ],
            None,
        );
        out.trim().strip_prefix("pod/").map(str::to_string)
    })
    .expect("the Deployment's Pod");
    wait_ready(&cluster, &node, &reconciler_pod);
    wait_ready(&cluster, &node, "prometheus-k8s-0");
    eprintln!(
        "deploy/local applied -> reconciler and Prometheus Pods Ready: {:?}",
        applied.elapsed()
    );
    let ip = pod_field(
        &cluster,
        "monitoring",
        "prometheus-k8s-0",
        "{.status.podIP}",
    );
    let config = poll(Duration::from_secs(60), || pod_config(&ip)).expect("Prometheus answers");
    assert!(
        config.contains("job_name: serviceMonitor/monitoring/promreload-reconciler/0"),
        "the reconciler in its Pod wrote deploy/'s config: {config}"
    );
    // deploy/'s PodMonitor: the sidecar in the Prometheus Pod, found by Pod discovery and
    // scraped (`up == 1`).
    assert!(
        config.contains("job_name: podMonitor/monitoring/promreload-sidecar/0"),
        "{config}"
    );
    let scraped = poll(Duration::from_secs(120), || {
        let result = query_result(&ip, r#"up{job="monitoring/promreload-sidecar"}"#)?;
        (result["value"][1] == "1").then_some(result)
    })
    .unwrap_or_else(|| panic!("the PodMonitor's target is not up: {}", targets(&ip)));
    assert_eq!(
        scraped["metric"]["container"], "config-reloader",
        "the sidecar's port, in its container: {scraped}"
    );

    // A Probe: Debian's blackbox exporter in a Pod as the prober, probing itself over HTTP;
    // the reconciler writes the job, Prometheus scrapes the prober (`up == 1`) and the probe
    // succeeds (`probe_success == 1`).
    node.blackbox_image(BLACKBOX_IMAGE);
    let blackbox = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: blackbox, namespace: monitoring}}\nspec:\n  containers:\n  - name: blackbox\n    image: {BLACKBOX_IMAGE}\n    imagePullPolicy: Never\n    args: [--config.file=/etc/blackbox.yml]\n    ports: [{{name: http, containerPort: 9115}}]\n    readinessProbe: {{httpGet: {{path: /-/healthy, port: 9115}}, periodSeconds: 1}}\n"
    );
    kubectl(&["apply", "-f", "-"], Some(&blackbox));
    wait_ready(&cluster, &node, "blackbox");
    let prober = pod_field(&cluster, "monitoring", "blackbox", "{.status.podIP}");
    let probe = format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: Probe\nmetadata: {{name: self, namespace: monitoring, labels: {{prometheus: k8s}}}}\nspec:\n  interval: 5s\n  module: http_2xx\n  prober: {{url: '{prober}:9115'}}\n  targets: {{staticConfig: {{static: ['http://127.0.0.1:9115/metrics']}}}}\n"
    );
    let start = Instant::now();
    kubectl(&["apply", "-f", "-"], Some(&probe));
    let live = job_goes_live(&ip, "probe/monitoring/self", start);
    eprintln!("deploy/local: Probe written -> job live in Prometheus: {live:?}");
    for query in [
        r#"up{job="probe/monitoring/self"}"#,
        r#"probe_success{job="probe/monitoring/self"}"#,
    ] {
        let value = poll(Duration::from_secs(120), || {
            let v = instant_query(&ip, query)?;
            (v == "1").then_some(v)
        });
        assert!(value.is_some(), "{query} is not 1: {}", targets(&ip));
    }

    // A ScrapeConfig with a static target (the prober's own metrics): its job is live and up,
    // and the reconciler, under deploy/'s RBAC, marks it Accepted in its status.
    let scrape_config = format!(
        "apiVersion: monitoring.coreos.com/v1alpha1\nkind: ScrapeConfig\nmetadata: {{name: prober, namespace: monitoring, labels: {{prometheus: k8s}}}}\nspec:\n  scrapeInterval: 5s\n  staticConfigs: [{{targets: ['{prober}:9115'], labels: {{role: prober}}}}]\n"
    );
    let start = Instant::now();
    kubectl(&["apply", "-f", "-"], Some(&scrape_config));
    let live = job_goes_live(&ip, "scrapeConfig/monitoring/prober", start);
    eprintln!("deploy/local: ScrapeConfig written -> job live in Prometheus: {live:?}");
    let query = r#"up{job="scrapeConfig/monitoring/prober",role="prober"}"#;
    let up = poll(Duration::from_secs(120), || {
        let v = instant_query(&ip, query)?;
        (v == "1").then_some(v)
    });
    assert!(up.is_some(), "{query} is not 1: {}", targets(&ip));
    let accepted = poll(Duration::from_secs(60), || {
        let jsonpath = "jsonpath={.status.bindings[0].conditions[0].status}";
        let args = [
            "get",
            "scrapeconfig",
            "-n",
            "monitoring",
            "prober",
            "-o",
            jsonpath,
        ];
        let status = kubectl_run(&cluster, &args, None);
        (status == "True").then_some(status)
    });
    assert!(
        accepted.is_some(),
        "the ScrapeConfig's Accepted condition is not True"
    );

    let start = Instant::now();
    let objects = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: monitoring, labels: {app: web}}\nspec:\n  ports: [{name: web, port: 80}]\n---\napiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: web, namespace: monitoring, labels: {prometheus: k8s}}\nspec:\n  selector: {matchLabels: {app: web}}\n  endpoints: [{port: web}]\n";
    kubectl(&["apply", "-f", "-"], Some(objects));
    let live = job_goes_live(&ip, "serviceMonitor/monitoring/web/0", start);
    eprintln!(
        "deploy/local: ServiceMonitor written -> job live in Prometheus (syncFrequency 1s): {live:?}"
    );
}
