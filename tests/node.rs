//! A real node: the kubelet and containerd (`scripts/node.sh`) under the test control plane,
//! with kube-controller-manager and kube-scheduler, running deploy/'s Prometheus StatefulSet
//! for real, with images assembled locally from
//! the binaries under test (`scripts/image.py`): promreload as init container and sidecar,
//! and the Prometheus built from Go modules. The kubelet mounts the Secret and the rule
//! ConfigMaps, swaps `..data` when they change, and calls the probes; nothing is emulated.
//! Last, the reconciler renders a PrometheusRule and Prometheus evaluates it.
//!
//! Changes to deploy/'s StatefulSet for this node, and only these: local images, host
//! networking on free ports (the node runs only `hostNetwork` Pods), no service-account
//! token (nothing here talks to the API), an instance label per StatefulSet, the init
//! container run as `/bin/prometheus-config-reloader`, the command prometheus-operator gives
//! its reloader, and probe timing fast enough for a test.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_yaml_ng::Value;
use support::cluster::*;
use support::{free_port, gzip, poll};

const PROMRELOAD_IMAGE: &str = "docker.io/local/promreload:test";
const PROMETHEUS_IMAGE: &str = "docker.io/local/prometheus:test";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A node of this test's own, stopped (and its kernel settings restored) on drop.
struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn up(cluster: &Cluster) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("bash")
            .arg(repo().join("scripts/node.sh"))
            .arg("up")
            .arg(dir.path())
            .arg(&cluster.kubeconfig)
            .env("SYNC_FREQUENCY", "1s")
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
    let ready = std::panic::catch_unwind(|| {
        let target = format!("pod/{pod}");
        let args = [
            "wait",
            "-n",
            "monitoring",
            "--for=condition=Ready",
            &target,
            "--timeout=120s",
        ];
        kubectl_run(cluster, &args, None)
    });
    if ready.is_err() {
        let describe = kubectl_run(cluster, &["describe", "pod", "-n", "monitoring", pod], None);
        panic!("{pod} did not become Ready:\n{describe}\n{}", node.log());
    }
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

/// The image the Dockerfile builds, as `scripts/image.py` arguments, read from its final
/// stage: each `COPY --from=build` (the release binaries are the ones under test; the
/// build stage's `ln -s` becomes a link), `USER` and `ENTRYPOINT`. The Dockerfile cannot be
/// built here (its base images are not reachable), so the image under test is assembled
/// from the Dockerfile itself: the two cannot disagree.
fn dockerfile_image_args() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let links: Vec<(String, String)> = text
        .split("ln -s ")
        .skip(1)
        .map(|rest| {
            let mut words = rest.split_whitespace();
            (words.next().unwrap().into(), words.next().unwrap().into())
        })
        .collect();
    let last_stage = text.rsplit("\nFROM ").next().unwrap();
    let mut args = Vec::new();
    for line in last_stage.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["COPY", "--from=build", src, dest] => {
                if let Some(bin) = src.strip_prefix("/src/target/release/") {
                    let path = match bin {
                        "promreload" => env!("CARGO_BIN_EXE_promreload"),
                        "promreload-reconciler" => env!("CARGO_BIN_EXE_promreload-reconciler"),
                        other => panic!("the Dockerfile copies an unknown binary {other}"),
                    };
                    args.extend(["--add".into(), format!("{path}={dest}")]);
                } else if let Some((target, _)) = links.iter().find(|(_, l)| l == src) {
                    args.extend(["--link".into(), format!("{dest}={target}")]);
                } else {
                    panic!("the Dockerfile copies {src}, which this test cannot assemble");
                }
            }
            ["USER", user] => args.extend(["--user".into(), user.to_string()]),
            ["ENTRYPOINT", ..] => {
                let json = line.trim_start_matches("ENTRYPOINT").trim();
                let entrypoint: Vec<String> = serde_json::from_str(json).unwrap();
                args.push("--entrypoint".into());
                args.extend(entrypoint);
            }
            _ => {}
        }
    }
    args
}

#[test]
fn the_image_under_test_is_the_one_the_dockerfile_describes() {
    let args = dockerfile_image_args().join(" ");
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
    for want in [
        "=/promreload ",
        "=/promreload-reconciler ",
        "--link /bin/prometheus-config-reloader=/promreload",
        "--user 65532:65532",
        "--entrypoint /promreload",
    ] {
        assert!(args.contains(want), "{want:?} in {args}");
    }
}

fn prometheus_binary() -> PathBuf {
    k8s_prometheus_dir().join("prometheus")
}

#[test]
fn deploys_prometheus_with_the_sidecar_in_a_real_pod_and_follows_secret_changes() {
    let cluster = Cluster::start_own();
    let node = Node::up(&cluster);
    let image_args = dockerfile_image_args();
    let image_args: Vec<&str> = image_args.iter().map(String::as_str).collect();
    node.image(PROMRELOAD_IMAGE, &image_args);
    node.image(
        PROMETHEUS_IMAGE,
        &[
            "--add",
            &format!("{}=/bin/prometheus", prometheus_binary().display()),
            "--entrypoint",
            "/bin/prometheus",
        ],
    );
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
