//! API mode against a real kube-apiserver (scripts/control-plane.sh, a throwaway one): the
//! release `promreload` reads Secret `prometheus-k8s` with a service-account token bound to
//! deploy/api-mode's Role. Measures, with `API_UPDATES` (default 50) Secret updates spaced
//! past the reload, the time from sending the update to the reload `POST` arriving at a local
//! endpoint (an upper bound of the reaction: it includes the update's own round trip); then
//! the idle RSS and CPU of the API-mode daemon, and of the file-mode daemon beside it, over
//! `API_IDLE_SECONDS` (default 60). Run with `cargo bench --bench api`; `PROMRELOAD_BIN`
//! measures another build of the binary (the static one the image ships).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn config(i: usize) -> Vec<u8> {
    gzip(
        format!("global:\n  external_labels:\n    seq: \"{i}\"\n    replica: $(POD_NAME)\n")
            .as_bytes(),
    )
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The throwaway control plane; stopped on drop.
struct ControlPlane {
    dir: tempfile::TempDir,
    kubectl: PathBuf,
}

impl ControlPlane {
    fn up() -> Self {
        let script = repo().join("scripts/control-plane.sh");
        let bin = run(Command::new("bash").arg(&script).arg("build"));
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("bash").arg(&script).arg("up").arg(dir.path()));
        Self {
            kubectl: Path::new(bin.trim()).join("kubectl"),
            dir,
        }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut child = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or("").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// deploy/api-mode's Role in "monitoring", and a kubeconfig of the service account.
    fn service_account_kubeconfig(&self) -> PathBuf {
        self.kubectl(&["create", "namespace", "monitoring"], None);
        self.kubectl(
            &[
                "-n",
                "monitoring",
                "create",
                "serviceaccount",
                "prometheus-k8s",
            ],
            None,
        );
        let rbac = fs::read_to_string(repo().join("deploy/api-mode/rbac.yaml")).unwrap();
        self.kubectl(&["apply", "-f", "-"], Some(&rbac));
        let token = self.kubectl(
            &["-n", "monitoring", "create", "token", "prometheus-k8s"],
            None,
        );
        let token_file = self.dir.path().join("token");
        fs::write(&token_file, token.trim()).unwrap();
        let admin = fs::read_to_string(self.kubeconfig()).unwrap();
        let field = |key: &str| {
            admin
                .lines()
                .find_map(|l| l.trim().strip_prefix(key))
                .unwrap()
                .trim()
                .to_string()
        };
        let path = self.dir.path().join("sa-kubeconfig");
        fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: sa\n  user:\n    tokenFile: {}\ncontexts:\n- name: c\n  context: {{cluster: c, user: sa, namespace: monitoring}}\ncurrent-context: c\n",
                field("server:"),
                field("certificate-authority:"),
                token_file.display()
            ),
        )
        .unwrap();
        path
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/control-plane.sh"))
            .arg("down")
            .arg(self.dir.path())
            .status();
    }
}

/// A reload endpoint that reports each request's arrival.
fn endpoint() -> (u16, mpsc::Receiver<Instant>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = tx.send(Instant::now());
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (port, rx)
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn binary() -> PathBuf {
    std::env::var_os("PROMRELOAD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_promreload").into())
}

fn daemon(env: &[(&str, &Path)], port: u16) -> Daemon {
    Daemon(
        Command::new(binary())
            .env_clear()
            .env("POD_NAME", "prometheus-k8s-0")
            .env(
                "RELOADER_RELOAD_URL",
                format!("http://127.0.0.1:{port}/-/reload"),
            )
            .env("RELOADER_DELAY_INTERVAL", "0")
            .env("RELOADER_LISTEN_ADDRESS", "127.0.0.1:0")
            .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// RSS (KiB) and CPU time (clock ticks) of a process.
fn usage(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    (rss, ticks)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let updates: usize = std::env::var("API_UPDATES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let idle = Duration::from_secs(
        std::env::var("API_IDLE_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    );
    let cp = ControlPlane::up();
    let sa = cp.service_account_kubeconfig();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let kubeconfig = cp.kubeconfig();
    let secrets: Api<Secret> = runtime.block_on(async {
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap();
        Api::namespaced(kube::Client::try_from(config).unwrap(), "monitoring")
    });
    let put = |i: usize| {
        let mut secret = Secret::default();
        secret.metadata.name = Some("prometheus-k8s".into());
        secret.data = Some([("prometheus.yaml.gz".to_string(), ByteString(config(i)))].into());
        runtime
            .block_on(secrets.patch(
                "prometheus-k8s",
                &PatchParams::apply("bench").force(),
                &Patch::Apply(&secret),
            ))
            .unwrap();
    };
    put(0);

    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let output = dir.path().join("prometheus.env.yaml");
    let (port, posts) = endpoint();
    let api = daemon(
        &[
            ("KUBECONFIG", &sa),
            ("RELOADER_CONFIG_SECRET", Path::new("prometheus-k8s")),
            ("RELOADER_CONFIG_ENVSUBST_FILE", &output),
        ],
        port,
    );
    posts
        .recv_timeout(Duration::from_secs(30))
        .expect("first reload");
    let mut latencies = Vec::new();
    for i in 1..=updates {
        std::thread::sleep(Duration::from_millis(100));
        while posts.try_recv().is_ok() {}
        let sent = Instant::now();
        put(i);
        let arrived = posts
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no reload after update {i}"));
        latencies.push(arrived.duration_since(sent).as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "API mode, Secret update sent -> reload POST, {updates} updates: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies[latencies.len() - 1]
    );

    // The file mode beside it, on a kubelet-style volume holding the same config.
    let volume = dir.path().join("volume");
    fs::create_dir_all(volume.join("..2026_11_26")).unwrap();
    fs::write(volume.join("..2026_11_26/prometheus.yaml.gz"), config(0)).unwrap();
    std::os::unix::fs::symlink("..2026_11_26", volume.join("..data")).unwrap();
    std::os::unix::fs::symlink(
        "..data/prometheus.yaml.gz",
        volume.join("prometheus.yaml.gz"),
    )
    .unwrap();
    let file_output = dir.path().join("file.env.yaml");
    let file = daemon(
        &[
            ("RELOADER_CONFIG_FILE", &volume.join("prometheus.yaml.gz")),
            ("RELOADER_CONFIG_ENVSUBST_FILE", &file_output),
        ],
        port,
    );
    posts
        .recv_timeout(Duration::from_secs(30))
        .expect("file-mode reload");
    let start = [usage(api.0.id()), usage(file.0.id())];
    std::thread::sleep(idle);
    let end = [usage(api.0.id()), usage(file.0.id())];
    let ticks = 100.0; // USER_HZ
    for (name, (s, e)) in ["API mode", "file mode"].iter().zip(start.iter().zip(end)) {
        println!(
            "{name}, idle {} s: RSS {:.1} MiB, CPU {:.2} ms/min",
            idle.as_secs(),
            e.0 as f64 / 1024.0,
            (e.1 - s.1) as f64 / ticks * 1e3 / (idle.as_secs_f64() / 60.0)
        );
    }
    println!(
        "binary {}: {:.2} MB",
        binary().display(),
        fs::metadata(binary()).unwrap().len() as f64 / 1e6
    );
}
