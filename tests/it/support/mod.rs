//! Shared helpers for the black-box tests: the kubelet's AtomicWriter layout, a real
//! Prometheus process, the `promreload` binary, and polling with a deadline.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use std::time::{Duration, Instant};

use flate2::{Compression, write::GzEncoder};
pub use kubelet::KubeletVolume;

#[cfg(feature = "reconciler")]
pub mod cluster;
pub mod kubelet;
pub mod mock;
pub mod pki;
pub mod pod;

/// Polls `f` every 20 ms until it returns `Some` or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Panics with `what` unless `f` becomes true within `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    if poll(timeout, || f().then_some(())).is_none() {
        panic!("timed out after {timeout:?} waiting until {what}");
    }
}

/// The CPU-heavy tests of one test binary take turns, so the timing bounds of one are not
/// eaten by another.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A process's resident set size (VmRSS) in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

/// A loopback port nobody listens on right now, and never handed out before
/// in this process: the kernel may give a just-closed port again, and two
/// tests running side by side must not receive the same one.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind a free port")
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Gzip with a zero mtime, like prometheus-operator's Secret.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// A gzip bomb: `mib` MiB of the letter `a` (text, so only the size cap can stop it), about
/// 1 KiB per MiB compressed.
pub fn gzip_bomb(mib: usize) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    let block = vec![b'a'; 1 << 20];
    for _ in 0..mib {
        e.write_all(&block).expect("gzip");
    }
    e.finish().expect("gzip")
}

/// Kills and reaps a child process when dropped.
pub struct Process {
    pub child: Child,
    pub log: PathBuf,
}

impl Process {
    /// Sends `signal` (e.g. "TERM") to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        poll(timeout, || self.child.try_wait().ok().flatten())
    }

    /// What the process has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Peak resident set size (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc status")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client")
}

/// How to start a Prometheus: which executable (a symlink gives it another process name),
/// the address it listens on, extra environment, an optional web config, and how to talk
/// to it.
pub struct PromOptions {
    pub exe: PathBuf,
    pub host: String,
    pub env: Vec<(String, String)>,
    pub web_config: Option<PathBuf>,
    pub scheme: &'static str,
    pub client: reqwest::blocking::Client,
    pub basic_auth: Option<(String, String)>,
}

impl Default for PromOptions {
    fn default() -> Self {
        Self {
            exe: PathBuf::from("prometheus"),
            host: "127.0.0.1".into(),
            env: Vec::new(),
            web_config: None,
            scheme: "http",
            client: http(),
            basic_auth: None,
        }
    }
}

/// A real Prometheus (Debian's package) on a loopback port with `--web.enable-lifecycle`.
pub struct Prometheus {
    pub process: Process,
    pub port: u16,
    opts: PromOptions,
    _storage: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus on `port` with `config` and `opts`, and waits until it is ready.
    pub fn start_with(port: u16, config: &Path, opts: PromOptions) -> Self {
        let storage = tempfile::tempdir().expect("tempdir");
        let log = storage.path().join("prometheus.log");
        let mut cmd = Command::new(&opts.exe);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address={}:{port}", opts.host))
            .arg(format!(
                "--storage.tsdb.path={}",
                storage.path().join("data").display()
            ))
            .arg("--web.enable-lifecycle")
            .arg("--log.level=warn");
        if let Some(web) = &opts.web_config {
            cmd.arg(format!("--web.config.file={}", web.display()));
        }
        cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
        let child = cmd
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start prometheus (is Debian's prometheus package installed?)");
        let mut p = Self {
            process: Process { child, log },
            port,
            opts,
            _storage: storage,
        };
        wait_until(Duration::from_secs(30), "Prometheus is ready", || {
            if let Ok(Some(status)) = p.process.child.try_wait() {
                panic!("Prometheus exited with {status}: {}", p.process.log());
            }
            p.get("/-/ready")
                .send()
                .is_ok_and(|r| r.status().is_success())
        });
        p
    }

    /// Starts Prometheus on `port` with defaults.
    pub fn start_on(port: u16, config: &Path) -> Self {
        Self::start_with(port, config, PromOptions::default())
    }

    /// Starts Prometheus on a free port.
    pub fn start(config: &Path) -> Self {
        Self::start_on(free_port(), config)
    }

    /// Changes the basic-auth credentials the test uses (after a rotation).
    pub fn set_basic_auth(&mut self, user: &str, password: &str) {
        self.opts.basic_auth = Some((user.into(), password.into()));
    }

    fn get(&self, path: &str) -> reqwest::blocking::RequestBuilder {
        let url = format!(
            "{}://{}:{}{path}",
            self.opts.scheme, self.opts.host, self.port
        );
        let request = self.opts.client.get(url);
        match &self.opts.basic_auth {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    fn get_json(&self, path: &str) -> serde_json::Value {
        let text = self
            .get(path)
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        serde_json::from_str(&text).expect("JSON")
    }

    /// The reload URL.
    pub fn reload_url(&self) -> String {
        format!("{}://127.0.0.1:{}/-/reload", self.opts.scheme, self.port)
    }

    /// The runtimeinfo URL.
    pub fn runtimeinfo_url(&self) -> String {
        format!(
            "{}://127.0.0.1:{}/api/v1/status/runtimeinfo",
            self.opts.scheme, self.port
        )
    }

    /// The value of an instant query's single sample, if there is exactly one.
    pub fn query_value(&self, query: &str) -> Option<f64> {
        let response = self
            .get("/api/v1/query")
            .query(&[("query", query)])
            .send()
            .ok()?;
        let body: serde_json::Value = serde_json::from_str(&response.text().ok()?).ok()?;
        let result = body["data"]["result"].as_array()?;
        match result.as_slice() {
            [one] => one["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// The active targets, from `/api/v1/targets` (the reconciler's tests check jobs by them).
    #[cfg(feature = "reconciler")]
    pub fn active_targets(&self) -> Vec<serde_json::Value> {
        let body = self.get_json("/api/v1/targets?state=active");
        body["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The loaded config, from `/api/v1/status/config`.
    pub fn loaded_config(&self) -> String {
        let body = self.get_json("/api/v1/status/config");
        body["data"]["yaml"]
            .as_str()
            .expect("data.yaml")
            .to_string()
    }

    /// `lastConfigTime` and `reloadConfigSuccess` from `/api/v1/status/runtimeinfo`.
    pub fn runtime_info(&self) -> (String, bool) {
        let body = self.get_json("/api/v1/status/runtimeinfo");
        let data = &body["data"];
        (
            data["lastConfigTime"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            data["reloadConfigSuccess"].as_bool().unwrap_or(false),
        )
    }
}

/// Path of the `promreload` binary under test.
pub fn promreload_bin() -> &'static str {
    env!("CARGO_BIN_EXE_promreload")
}

/// Runs `promreload` to completion (init mode, bad flags) with `env` and `args`.
pub fn run_promreload(env: &[(&str, &str)], args: &[&str]) -> (ExitStatus, String) {
    let out = Command::new(promreload_bin())
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run promreload");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status, text)
}

/// A running `promreload` daemon with its admin server on a loopback port.
pub struct Daemon {
    pub process: Process,
    pub admin: String,
    /// A client that trusts the admin certificate; `None`: a plain one, made at each request
    /// (a blocking client cannot be made inside an async test's runtime).
    client: Option<reqwest::blocking::Client>,
    _logdir: tempfile::TempDir,
}

impl Daemon {
    /// Starts the daemon with exactly `env` (plus a loopback listen address unless given)
    /// and `args`, and waits for its admin server.
    pub fn start(env: &[(&str, &str)], args: &[&str]) -> Self {
        Self::start_scheme(env, args, "http")
    }

    /// Like [`Daemon::start`], for an admin server on `scheme` (`https` with TLS settings).
    pub fn start_scheme(env: &[(&str, &str)], args: &[&str], scheme: &str) -> Self {
        Self::launch(env, &[], args, scheme)
    }

    /// Like [`Daemon::start`], run through a wrapper that execs it (`prlimit ... --`).
    pub fn start_wrapped(env: &[(&str, &str)], wrapper: &[&str]) -> Self {
        Self::launch(env, wrapper, &[], "http")
    }

    fn launch(env: &[(&str, &str)], wrapper: &[&str], args: &[&str], scheme: &str) -> Self {
        let logdir = tempfile::tempdir().expect("tempdir");
        let log = logdir.path().join("promreload.log");
        let mut cmd = match wrapper.split_first() {
            Some((exe, rest)) => {
                let mut cmd = Command::new(exe);
                cmd.args(rest).arg(promreload_bin());
                cmd
            }
            None => Command::new(promreload_bin()),
        };
        cmd.args(args)
            .env_clear()
            .env("RELOADER_LISTEN_ADDRESS", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("log file"));
        let mut process = Process {
            child: cmd.spawn().expect("start promreload"),
            log,
        };
        let admin = poll(Duration::from_secs(10), || {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("promreload exited with {status}: {}", process.log());
            }
            listen_address(&process.log())
        })
        .unwrap_or_else(|| panic!("promreload did not log its address: {}", process.log()));
        Self {
            process,
            admin: format!("{scheme}://{admin}"),
            client: None,
            _logdir: logdir,
        }
    }

    /// Reads the admin endpoints through `client` (one that trusts the admin certificate).
    pub fn with_client(mut self, client: reqwest::blocking::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// GETs an admin path; returns status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .clone()
            .unwrap_or_else(http)
            .get(format!("{}{path}", self.admin))
            .send()
            .expect("admin GET");
        (r.status().as_u16(), r.text().unwrap_or_default())
    }

    /// The value of one sample in `/metrics` (name with labels as exposed), 0 if absent.
    pub fn metric(&self, sample: &str) -> f64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// The `/status` document.
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/status").1).expect("status JSON")
    }

    /// Waits until `sample` reaches at least `value`.
    pub fn wait_metric_at_least(&self, sample: &str, value: f64, timeout: Duration) {
        wait_until(timeout, &format!("{sample} >= {value}"), || {
            self.metric(sample) >= value
        });
    }
}

/// The address the daemon logged, with a wildcard host replaced by loopback.
fn listen_address(log: &str) -> Option<String> {
    let addr = log
        .lines()
        .find(|l| l.contains("admin server listening"))?
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("address="))?;
    let port = addr.rsplit(':').next()?;
    Some(match addr.rsplit_once(':')?.0 {
        "[::]" | "0.0.0.0" => format!("127.0.0.1:{port}"),
        host => format!("{host}:{port}"),
    })
}
