//! What a hostile tryout found: configs that render to nothing, odd files where configs are
//! expected, paths that alias, in-place writes, hangs, signals, a flooded admin port,
//! unbounded inputs, and secrets in URLs and error messages. Each case runs the real binary,
//! against a real Prometheus wherever Prometheus is involved.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::mock::{MockServer, Reply};
use crate::support::pod::*;
use crate::support::*;

/// A Pod whose init container wrote `jobs`, a real Prometheus loaded with it, and the sidecar
/// with `extra` settings, after its first successful reload.
fn pod_with(jobs: &[&str], extra: &[(&str, &str)]) -> (Pod, Prometheus, Daemon) {
    let mut pod = Pod::new();
    pod.publish(&config(jobs));
    let (status, log) = pod.init(extra);
    assert!(status.success(), "init mode failed: {log}");
    let prometheus = Prometheus::start(&pod.output());
    let daemon = pod.daemon(&prometheus.reload_url(), extra);
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
    (pod, prometheus, daemon)
}

fn ok_mock() -> MockServer {
    MockServer::start(|_| Reply::Http(200, vec![], String::new()))
}

fn apply_errors(daemon: &Daemon, kind: &str) -> f64 {
    daemon.metric(&format!(
        "reloader_config_apply_errors_total{{kind=\"{kind}\"}}"
    ))
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn configs_that_render_to_nothing_never_replace_a_good_one() {
    let (mut pod, prometheus, daemon) = pod_with(
        &["alpha", "beta"],
        &[
            ("EMPTY", ""),
            ("RELOADER_STATEFULSET_ORDINAL_FROM_ENVVAR", "UNSET_POD_NAME"),
        ],
    );
    let good = pod.output_text();
    let reloads = daemon.metric("reloader_reloads_total");
    let cases: [(&[u8], &str); 6] = [
        (&gzip(b""), "empty"),
        (b"$(EMPTY)", "empty"),
        (b"$(STATEFULSET_ORDINAL_NUMBER)\n", "empty"),
        (b"# generated\n$(EMPTY)\n\n", "empty"),
        (&gzip(b"{}\n"), "empty"),
        (b"- job_name: x\n", "not_config"),
    ];
    for (input, kind) in cases {
        let before = apply_errors(&daemon, kind);
        pod.publish_raw(input);
        wait_until(WAIT, &format!("{input:?} is refused as {kind}"), || {
            apply_errors(&daemon, kind) > before
        });
        assert_eq!(pod.output_text(), good, "{input:?}: the good output stays");
        let error = daemon.status()["last_apply_error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            error.contains("refused"),
            "{input:?}: /status says {error:?}"
        );
    }
    assert_eq!(
        daemon.metric("reloader_reloads_total"),
        reloads,
        "nothing reloaded"
    );
    let loaded = prometheus.loaded_config();
    assert!(loaded.contains("job_name: alpha") && loaded.contains("job_name: beta"));
    assert!(
        daemon
            .process
            .log()
            .contains("renders to an empty config (no bytes)")
    );
}

#[test]
fn odd_entries_in_a_watched_dir_are_skipped_and_named_never_blocking_a_reload() {
    let mut pod = Pod::new();
    let rules = pod.root.path().join("rules");
    fs::create_dir(&rules).unwrap();
    fs::write(rules.join("a.yaml"), "groups: []\n").unwrap();
    pod.publish(&config(&["before"]));
    assert!(pod.init(&[]).0.success());
    let prometheus = Prometheus::start(&pod.output());
    let dirs = rules.display().to_string();
    let daemon = pod.daemon(
        &prometheus.reload_url(),
        &[("RELOADER_WATCHED_DIRS", &dirs)],
    );
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);

    let _socket = std::os::unix::net::UnixListener::bind(rules.join("a.sock")).unwrap();
    mkfifo(&rules.join("b.fifo"));
    symlink("c.loop", rules.join("c.loop")).unwrap();
    pod.publish(&config(&["after"]));
    wait_until(WAIT, "Prometheus runs the new config", || {
        prometheus.loaded_config().contains("job_name: after")
    });
    wait_until(WAIT, "the skipped entries are counted", || {
        daemon.metric("reloader_watched_files_skipped") == 3.0
    });
    assert_eq!(daemon.get("/readyz").0, 200);
    let log = daemon.process.log();
    for name in ["a.sock", "b.fifo", "c.loop"] {
        let path = rules.join(name).display().to_string();
        assert!(log.contains(&path), "the log names {path}:\n{log}");
    }
    assert!(log.contains("reason=\"a FIFO\"") || log.contains("reason=a FIFO"));
    let skipped = daemon.status()["skipped"].as_array().unwrap().len();
    assert_eq!(skipped, 3);
    // A rule change still reloads, the odd entries notwithstanding.
    let reloads = daemon.metric("reloader_reloads_total");
    fs::write(rules.join("a.yaml"), "groups: [{name: g, rules: []}]\n").unwrap();
    daemon.wait_metric_at_least("reloader_reloads_total", reloads + 1.0, WAIT);
    assert_eq!(daemon.metric("reloader_last_reload_successful"), 1.0);
}

#[test]
fn a_watched_dir_that_is_a_file_is_named_and_readiness_does_not_hang() {
    let pod = Pod::new();
    let mut pod = pod;
    pod.publish(&config(&["one"]));
    let not_a_dir = pod.root.path().join("rules.yaml");
    fs::write(&not_a_dir, "groups: []\n").unwrap();
    let mock = ok_mock();
    let dirs = not_a_dir.display().to_string();
    let daemon = pod.daemon(&mock.url("/-/reload"), &[("RELOADER_WATCHED_DIRS", &dirs)]);
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
    wait_until(WAIT, "/readyz is 200", || daemon.get("/readyz").0 == 200);
    let reloads = daemon.metric("reloader_reloads_total");
    pod.publish(&config(&["two"]));
    daemon.wait_metric_at_least("reloader_reloads_total", reloads + 1.0, WAIT);
    assert!(pod.output_text().contains("job_name: two"));
    let log = daemon.process.log();
    assert!(log.contains(&dirs), "the log names the path:\n{log}");
    assert!(log.contains("not a directory"), "{log}");
}

#[test]
fn an_output_that_resolves_to_the_input_is_refused_however_spelled() {
    let mut pod = Pod::new();
    pod.publish(&config(&["x"]));
    let key = pod.volume.key_path(KEY);
    let before = fs::read(&key).unwrap();
    let dir = pod.volume.dir().to_path_buf();
    let spellings = [
        // `..` through a sibling directory.
        dir.join("..data/../prometheus.yaml.gz"),
        // The file the key resolves to.
        fs::canonicalize(&key).unwrap(),
        // Relative to the working directory.
        PathBuf::from("config/./prometheus.yaml.gz"),
    ];
    for output in spellings {
        let out = Command::new(promreload_bin())
            .env_clear()
            .env("RELOADER_CONFIG_FILE", &key)
            .env("RELOADER_CONFIG_ENVSUBST_FILE", &output)
            .env("RELOADER_WATCH_INTERVAL", "0")
            .current_dir(pod.root.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", output.display());
        assert!(
            stderr.contains("must differ from the input"),
            "{}: {stderr}",
            output.display()
        );
        assert_eq!(fs::read(&key).unwrap(), before, "the input is untouched");
    }
}

#[test]
fn an_in_place_write_in_two_steps_is_never_reloaded_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("prometheus.yaml");
    let output = dir.path().join("out/prometheus.env.yaml");
    fs::create_dir(dir.path().join("out")).unwrap();
    let jobs: Vec<String> = (0..10).map(|i| format!("job{i}")).collect();
    let full = config(&jobs.iter().map(String::as_str).collect::<Vec<_>>());
    fs::write(&input, config(&["first"])).unwrap();
    // The reload endpoint records what the output held at each reload.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (record, path) = (seen.clone(), output.clone());
    let mock = MockServer::start(move |_| {
        record
            .lock()
            .unwrap()
            .push(fs::read_to_string(&path).unwrap_or_default());
        Reply::Http(200, vec![], String::new())
    });
    let daemon = Daemon::start(
        &[
            ("RELOADER_CONFIG_FILE", input.to_str().unwrap()),
            ("RELOADER_CONFIG_ENVSUBST_FILE", output.to_str().unwrap()),
            ("RELOADER_RELOAD_URL", &mock.url("/-/reload")),
            ("RELOADER_DELAY_INTERVAL", "0"),
            ("POD_NAME", "p-0"),
            ("SHARD", "0"),
        ],
        &[],
    );
    daemon.wait_metric_at_least("reloader_reloads_total", 1.0, WAIT);
    // Truncate, write the first half, pause as a slow writer does, write the rest.
    let half = full.len() / 2;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&input)
        .unwrap();
    file.write_all(&full.as_bytes()[..half]).unwrap();
    file.sync_all().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    file.write_all(&full.as_bytes()[half..]).unwrap();
    drop(file);
    let expected = full.replace("$(POD_NAME)", "p-0").replace("$(SHARD)", "0");
    wait_until(WAIT, "the whole config is reloaded", || {
        seen.lock().unwrap().last().is_some_and(|s| *s == expected)
    });
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.len(),
        2,
        "one reload at start, one for the finished write"
    );
    assert!(
        seen.iter().all(|s| s.ends_with("action: keep\n")),
        "no half config"
    );
}

#[test]
fn a_file_that_never_stops_changing_holds_the_config_back_ten_seconds_at_most() {
    let mut pod = Pod::new();
    pod.publish(&config(&["before"]));
    let rules = pod.root.path().join("rules");
    fs::create_dir(&rules).unwrap();
    fs::write(rules.join("busy.yaml"), "groups: []\n").unwrap();
    let mock = ok_mock();
    let dirs = rules.display().to_string();
    let daemon = pod.daemon(&mock.url("/-/reload"), &[("RELOADER_WATCHED_DIRS", &dirs)]);
    daemon.wait_metric_at_least("reloader_reloads_total", 1.0, WAIT);
    // A writer rewrites a rule file in place every 100 ms, for as long as the test runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (flag, busy) = (stop.clone(), rules.join("busy.yaml"));
    let writer = std::thread::spawn(move || {
        let mut i = 0u64;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            fs::write(&busy, format!("# {i}\ngroups: []\n")).unwrap();
            i += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let start = Instant::now();
    pod.publish(&config(&["after"]));
    wait_until(Duration::from_secs(20), "the new config is written", || {
        pod.output_text().contains("job_name: after")
    });
    let took = start.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    eprintln!("config applied {took:?} after the swap, a rule file changing every 100 ms");
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[test]
fn a_symlinked_watched_dir_repointed_reloads_at_once() {
    let mut pod = Pod::new();
    pod.publish(&config(&["x"]));
    let root = pod.root.path();
    for rev in ["rev1", "rev2"] {
        fs::create_dir(root.join(rev)).unwrap();
        fs::write(
            root.join(rev).join("r.yaml"),
            format!("# {rev}\ngroups: []\n"),
        )
        .unwrap();
    }
    symlink(root.join("rev1"), root.join("rules")).unwrap();
    let mock = ok_mock();
    let dirs = root.join("rules").display().to_string();
    let daemon = pod.daemon(&mock.url("/-/reload"), &[("RELOADER_WATCHED_DIRS", &dirs)]);
    daemon.wait_metric_at_least("reloader_reloads_total", 1.0, WAIT);
    // git-sync's repoint: a new link renamed over the old one; the old target stays.
    symlink(root.join("rev2"), root.join("rules.tmp")).unwrap();
    let start = Instant::now();
    fs::rename(root.join("rules.tmp"), root.join("rules")).unwrap();
    daemon.wait_metric_at_least("reloader_reloads_total", 2.0, Duration::from_secs(10));
    eprintln!("repointed directory reloaded after {:?}", start.elapsed());
    // And the new target is watched: a change inside it reloads too.
    fs::write(root.join("rev2/r.yaml"), "groups: [{name: n, rules: []}]\n").unwrap();
    daemon.wait_metric_at_least("reloader_reloads_total", 3.0, Duration::from_secs(10));
}

#[test]
fn fifos_are_refused_without_hanging_and_sigterm_still_works() {
    let mut pod = Pod::new();
    pod.publish(&config(&["good"]));
    let rules = pod.root.path().join("rules");
    fs::create_dir(&rules).unwrap();
    mkfifo(&rules.join("pipe.yaml"));
    let mock = ok_mock();
    let dirs = rules.display().to_string();
    let mut daemon = pod.daemon(&mock.url("/-/reload"), &[("RELOADER_WATCHED_DIRS", &dirs)]);
    daemon.wait_metric_at_least("reloader_reloads_total", 1.0, WAIT);
    let good = pod.output_text();
    // The config file itself becomes a FIFO.
    let key = pod.volume.key_path(KEY);
    fs::remove_file(&key).unwrap();
    mkfifo(&key);
    fs::write(pod.volume.dir().join("nudge"), "1").unwrap();
    wait_until(WAIT, "the FIFO is refused", || {
        daemon.process.log().contains("not a regular file (a FIFO)")
    });
    assert_eq!(pod.output_text(), good);
    assert_eq!(daemon.get("/healthz").0, 200);
    // The loop is not stuck: a real config is applied again.
    fs::remove_file(&key).unwrap();
    pod.volume
        .force_update(&[(KEY, &gzip(config(&["later"]).as_bytes()))]);
    wait_until(WAIT, "the next config is written", || {
        pod.output_text().contains("job_name: later")
    });
    let start = Instant::now();
    daemon.process.signal("TERM");
    let status = daemon
        .process
        .wait_exit(Duration::from_secs(5))
        .expect("exits");
    assert_eq!(status.code(), Some(0));
    eprintln!("SIGTERM to exit: {:?}", start.elapsed());
}

/// An ext4 image on a loop device, frozen with `fsfreeze` on demand: writes to it hang in the
/// kernel, as on a hung network filesystem. Thawed and unmounted when dropped.
struct FreezableFs {
    mount: PathBuf,
    frozen: bool,
    _dir: tempfile::TempDir,
}

impl FreezableFs {
    fn new() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        let mount = dir.path().join("mnt");
        fs::create_dir(&mount).unwrap();
        let ok = |cmd: &mut Command| {
            cmd.stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let made = ok(Command::new("truncate").arg("-s").arg("16M").arg(&image))
            && ok(Command::new("mkfs.ext4").arg("-q").arg(&image))
            && ok(Command::new("mount")
                .arg("-o")
                .arg("loop")
                .arg(&image)
                .arg(&mount));
        made.then(|| Self {
            mount,
            frozen: false,
            _dir: dir,
        })
    }

    fn freeze(&mut self, frozen: bool) {
        let flag = if frozen { "-f" } else { "-u" };
        let status = Command::new("fsfreeze").arg(flag).arg(&self.mount).status();
        assert!(status.is_ok_and(|s| s.success()), "fsfreeze {flag}");
        self.frozen = frozen;
    }
}

impl Drop for FreezableFs {
    fn drop(&mut self) {
        if self.frozen {
            let _ = Command::new("fsfreeze").arg("-u").arg(&self.mount).status();
        }
        // Lazy: a process still using it (the daemon, ended after this) does not keep it.
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

#[test]
fn a_loop_stuck_on_a_hung_filesystem_fails_liveness() {
    let daemon: Daemon;
    let Some(mut frozen) = FreezableFs::new() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI runs as root with loop devices: the hung-filesystem case must run"
        );
        eprintln!("cannot mount a loop device here; the hung-filesystem case is skipped");
        return;
    };
    // `daemon` is declared before `frozen`, so it is dropped after it: a daemon stuck in the
    // kernel can only be reaped once the filesystem is thawed, even when an assertion fails.
    let mut pod = Pod::new();
    pod.publish(&config(&["before"]));
    let output = frozen.mount.join("prometheus.env.yaml");
    let mock = ok_mock();
    daemon = pod.daemon(
        &mock.url("/-/reload"),
        &[
            ("RELOADER_CONFIG_ENVSUBST_FILE", output.to_str().unwrap()),
            ("RELOADER_LIVENESS_TIMEOUT", "1s"),
        ],
    );
    daemon.wait_metric_at_least("reloader_reloads_total", 1.0, WAIT);
    assert_eq!(daemon.get("/healthz").0, 200);
    frozen.freeze(true);
    pod.publish(&config(&["after"]));
    wait_until(WAIT, "/healthz fails while the write hangs", || {
        daemon.get("/healthz").0 == 503
    });
    assert_eq!(
        daemon.get("/readyz").0,
        200,
        "the last good config is in place"
    );
    frozen.freeze(false);
    wait_until(
        WAIT,
        "/healthz recovers once the filesystem is back",
        || daemon.get("/healthz").0 == 200,
    );
    daemon.wait_metric_at_least("reloader_reloads_total", 2.0, WAIT);
    assert!(
        fs::read_to_string(&output)
            .unwrap()
            .contains("job_name: after")
    );
}

#[test]
fn sighup_reloads_now_and_other_signals_do_not_kill() {
    let (_pod, prometheus, daemon) = pod_with(&["steady"], &[]);
    let reloads = daemon.metric("reloader_reloads_total");
    let (before, _) = prometheus.runtime_info();
    // lastConfigTime has whole seconds: signal in a later second than the last reload.
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let second = now();
    wait_until(WAIT, "the next second", || now() > second);
    daemon.process.signal("HUP");
    daemon.wait_metric_at_least("reloader_reloads_total", reloads + 1.0, WAIT);
    assert_eq!(daemon.metric("reloader_last_reload_successful"), 1.0);
    wait_until(WAIT, "Prometheus reloaded", || {
        let (after, ok) = prometheus.runtime_info();
        ok && after != before
    });
    for signal in ["USR1", "USR2", "ALRM"] {
        daemon.process.signal(signal);
    }
    wait_until(WAIT, "the ignored signals are logged", || {
        let log = daemon.process.log();
        ["SIGUSR1", "SIGUSR2", "SIGALRM"]
            .iter()
            .all(|s| log.contains(&format!("{s} received; ignored")))
    });
    assert_eq!(daemon.get("/healthz").0, 200);
    assert_eq!(daemon.metric("reloader_reloads_total"), reloads + 1.0);
}

/// The daemon's CPU time so far (user + system), from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn open_fds(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Starts the daemon under `ulimit -n limit` (soft and hard).
fn daemon_with_fd_limit(pod: &Pod, url: &str, limit: u32) -> Daemon {
    let env = pod.env(url);
    let prlimit = format!("--nofile={limit}:{limit}");
    Daemon::start_wrapped(&borrow(&env), &["prlimit", &prlimit, "--"])
}

#[test]
fn a_flood_of_idle_connections_neither_spins_nor_starves_the_loop() {
    // This test process holds thousands of sockets.
    promreload::raise_fd_limit();
    let mut pod = Pod::new();
    pod.publish(&config(&["flood"]));
    let mock = ok_mock();
    let daemon = daemon_with_fd_limit(&pod, &mock.url("/-/reload"), 1024);
    daemon.wait_metric_at_least("reloader_reloads_total", 1.0, WAIT);
    let pid = daemon.process.child.id();
    let addr = daemon.admin.trim_start_matches("http://").to_string();
    let log_before = daemon.process.log().len();
    let cpu_before = cpu_seconds(pid);
    let start = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..1100 {
        if let Ok(s) = TcpStream::connect(&addr) {
            idle.push(s);
        }
    }
    // The probe still answers on a fresh connection, quickly.
    let probe = Instant::now();
    assert_eq!(daemon.get("/healthz").0, 200);
    let probe_took = probe.elapsed();
    // And the config loop still works.
    pod.publish(&config(&["flood", "more"]));
    daemon.wait_metric_at_least("reloader_reloads_total", 2.0, WAIT);
    let cpu = cpu_seconds(pid) - cpu_before;
    let elapsed = start.elapsed();
    let logged = daemon.process.log().len() - log_before;
    let fds = open_fds(pid);
    eprintln!(
        "{} idle connections: /healthz in {probe_took:?}, {cpu:.2} s CPU over {elapsed:?}, \
         {logged} bytes logged, {fds} descriptors open",
        idle.len()
    );
    assert!(probe_took < Duration::from_secs(1), "{probe_took:?}");
    assert!(cpu < 1.0, "CPU spin: {cpu} s");
    assert!(logged < 4096, "log storm: {logged} bytes");
    assert!(fds < 200, "{fds} descriptors: the connection cap holds");
}

#[test]
fn idle_keep_alive_and_slowloris_connections_are_shed_and_memory_returns() {
    // This test process holds thousands of sockets.
    promreload::raise_fd_limit();
    let mut pod = Pod::new();
    pod.publish(&config(&["mem"]));
    let mock = ok_mock();
    let daemon = pod.daemon(&mock.url("/-/reload"), &[]);
    daemon.wait_metric_at_least("reloader_reloads_total", 1.0, WAIT);
    let pid = daemon.process.child.id();
    let addr = daemon.admin.trim_start_matches("http://").to_string();
    let idle_rss = rss_kib(pid);
    let mut held = Vec::new();
    // 2,000 keep-alive clients: one request each, then they hold the connection.
    for _ in 0..2000 {
        let Ok(mut s) = TcpStream::connect(&addr) else {
            continue;
        };
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        held.push(s);
    }
    // 500 slowloris clients: a request line, then nothing.
    for _ in 0..500 {
        let Ok(mut s) = TcpStream::connect(&addr) else {
            continue;
        };
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ");
        held.push(s);
    }
    let busy_rss = rss_kib(pid);
    let fds = open_fds(pid);
    assert_eq!(daemon.get("/healthz").0, 200);
    // A slowloris client is cut off by the header timeout.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let cut = Instant::now();
    let mut buf = [0u8; 512];
    let closed = match slow.read(&mut buf) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(closed, "the slow client is disconnected");
    let cut = cut.elapsed();
    drop(held);
    wait_until(WAIT, "the connections are gone", || open_fds(pid) < 30);
    let after_rss = rss_kib(pid);
    eprintln!(
        "RSS idle {idle_rss} KiB, with 2,500 clients {busy_rss} KiB ({fds} descriptors), \
         after {after_rss} KiB; a slow header was cut after {cut:?}"
    );
    assert!(fds < 200, "{fds} descriptors: the connection cap holds");
    assert!(cut < Duration::from_secs(8), "header timeout: {cut:?}");
    assert!(
        busy_rss < idle_rss + 16 * 1024,
        "memory must stay bounded: {idle_rss} -> {busy_rss} KiB"
    );
    assert!(
        after_rss < idle_rss + 8 * 1024,
        "memory returns near idle: {idle_rss} -> {after_rss} KiB"
    );
}

/// A gzip of `count` distinct `$(NAME)` references, none of them set.
fn distinct_unset_names(count: usize) -> Vec<u8> {
    let mut text = String::from("global:\n  scrape_interval: 1m\n# ");
    for i in 0..count {
        text.push_str(&format!("$(UNSET_{i:08})"));
        if i % 8 == 7 {
            text.push_str("\n# ");
        }
    }
    text.push('\n');
    gzip(text.as_bytes())
}

#[test]
fn millions_of_distinct_unset_names_keep_memory_logs_and_status_small() {
    let _turn = heavy();
    let mut pod = Pod::new();
    pod.publish(&config(&["names"]));
    let mock = ok_mock();
    let daemon = pod.daemon(&mock.url("/-/reload"), &[]);
    daemon.wait_metric_at_least("reloader_reloads_total", 1.0, WAIT);
    let input = distinct_unset_names(2_000_000);
    eprintln!(
        "{} MB gzip of 2,000,000 distinct unset names",
        input.len() >> 20
    );
    pod.publish_raw(&input);
    daemon.wait_metric_at_least("reloader_reloads_total", 2.0, Duration::from_secs(60));
    let peak = daemon.process.peak_rss_kib();
    let log = daemon.process.log();
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    let status = daemon.get("/status").1;
    eprintln!(
        "peak RSS {peak} KiB, longest log line {longest} bytes, /status {} bytes",
        status.len()
    );
    assert_eq!(
        daemon.metric("reloader_config_environment_variable_expansion_errors"),
        10_000.0,
        "counted up to the bound"
    );
    assert!(peak < 40 * 1024, "peak RSS {peak} KiB");
    assert!(longest < 2048, "a log line of {longest} bytes");
    assert!(log.contains("and 9990+ more"), "{log}");
    assert!(status.len() < 4096);

    // Strict mode refuses the same input with an error of bounded size.
    let strict = pod.daemon(&mock.url("/-/reload"), &[("RELOADER_STRICT_ENV", "true")]);
    wait_until(Duration::from_secs(60), "strict mode refuses it", || {
        apply_errors(&strict, "unset_variables") >= 1.0
    });
    let status = strict.get("/status").1;
    assert!(status.len() < 4096, "/status of {} bytes", status.len());
}

#[test]
fn an_expansion_bomb_is_stopped_by_the_decompressed_input_cap() {
    let _turn = heavy();
    let mut pod = Pod::new();
    pod.publish(&config(&["good"]));
    let daemon = pod.daemon(
        "http://127.0.0.1:1/-/reload",
        &[("EMPTY", ""), ("RELOADER_MAX_CONFIG_BYTES", "4MiB")],
    );
    wait_until(WAIT, "the good config is written", || pod.output().exists());
    let good = pod.output_text();
    // 1 GiB of references that expand to nothing: the output stays tiny.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(b"a: 1\n").unwrap();
    let block = b"$(EMPTY)".repeat(1 << 17);
    for _ in 0..1024 {
        e.write_all(&block).unwrap();
    }
    let bomb = e.finish().unwrap();
    let pid = daemon.process.child.id();
    let cpu_before = cpu_seconds(pid);
    pod.publish_raw(&bomb);
    wait_until(WAIT, "the bomb is refused", || {
        apply_errors(&daemon, "too_large") >= 1.0
    });
    let cpu = cpu_seconds(pid) - cpu_before;
    eprintln!(
        "1 GiB expansion bomb ({} KiB gzip) refused after {cpu:.2} s CPU",
        bomb.len() >> 10
    );
    assert!(daemon.process.log().contains("decompressed config exceeds"));
    assert_eq!(pod.output_text(), good);
}

#[test]
fn a_missing_watched_dir_is_logged_once_and_polled_by_stat() {
    let mut pod = Pod::new();
    pod.publish(&config(&["x"]));
    let rules = pod.root.path().join("rules");
    let mock = ok_mock();
    let dirs = rules.display().to_string();
    let daemon = pod.daemon(&mock.url("/-/reload"), &[("RELOADER_WATCHED_DIRS", &dirs)]);
    daemon.wait_metric_at_least("reloader_reloads_total", 1.0, WAIT);
    let checks = daemon.metric("reloader_config_apply_operations_total");
    // The retry interval is 100 ms: a full check every poll would be about 20 here.
    let deadline = Instant::now() + Duration::from_secs(2);
    wait_until(Duration::from_secs(5), "two seconds pass", || {
        Instant::now() >= deadline
    });
    let more = daemon.metric("reloader_config_apply_operations_total") - checks;
    let log = daemon.process.log();
    assert_eq!(
        log.matches("watched directory is missing").count(),
        1,
        "{log}"
    );
    assert!(
        more <= 1.0,
        "{more} full checks while the directory was missing"
    );
    fs::create_dir(&rules).unwrap();
    fs::write(rules.join("r.yaml"), "groups: []\n").unwrap();
    daemon.wait_metric_at_least("reloader_reloads_total", 2.0, WAIT);
    wait_until(WAIT, "its return is logged", || {
        daemon.process.log().contains("watched directory appeared")
    });
}

#[test]
fn a_password_in_the_reload_url_is_never_shown() {
    let mut pod = Pod::new();
    pod.publish(&config(&["x"]));
    let password = "hunter2-reload-pass";
    // Prometheus is not there: every error names the URL.
    let url = format!("http://admin:{password}@127.0.0.1:1/-/reload");
    let daemon = pod.daemon(&url, &[]);
    daemon.wait_metric_at_least("reloader_reloads_failed_total", 2.0, WAIT);
    let status = daemon.get("/status").1;
    let everything = daemon.process.log() + &status;
    assert!(
        !everything.contains(password),
        "the password leaked:\n{everything}"
    );
    assert!(
        everything.contains("admin:xxxxx@127.0.0.1:1"),
        "{everything}"
    );
    // A URL that does not parse is not echoed with its password either.
    let (status, out) = run_promreload(
        &[("RELOADER_CONFIG_FILE", "/x")],
        &[&format!(
            "--reload-url=http://admin:{password}@[::1/-/reload"
        )],
    );
    assert_eq!(status.code(), Some(2));
    assert!(
        !out.contains(password) && out.contains("--reload-url"),
        "{out}"
    );
    // The credentials still work: they are sent as basic auth.
    let mock = MockServer::start(|head| {
        // "admin:hunter2-reload-pass" in base64; header names may come in any case.
        let auth = head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            })
            .map(|(_, v)| v.trim().to_string());
        if auth.as_deref() == Some("Basic YWRtaW46aHVudGVyMi1yZWxvYWQtcGFzcw==") {
            Reply::Http(200, vec![], String::new())
        } else {
            Reply::Http(401, vec![], "unauthorized".into())
        }
    });
    let url = format!("http://admin:{password}@127.0.0.1:{}/-/reload", mock.port);
    let daemon = pod.daemon(&url, &[]);
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
}

#[test]
fn prefixes_of_secrets_that_prometheus_shortens_are_redacted() {
    let secret = "s3cr3t-token-value-long";
    let mut pod = Pod::new();
    pod.publish(&config(&["x"]));
    assert!(pod.init(&[]).0.success());
    let prometheus = Prometheus::start(&pod.output());
    pod.publish(
        "scrape_configs:\n- job_name: x\n  sample_limit: $(API_TOKEN)\n  static_configs: [{targets: ['127.0.0.1:9']}]\n",
    );
    let daemon = pod.daemon(&prometheus.reload_url(), &[("API_TOKEN", secret)]);
    daemon.wait_metric_at_least("reloader_reload_errors_total{kind=\"status\"}", 1.0, WAIT);
    let status = daemon.get("/status").1;
    assert!(
        status.contains("[redacted]..."),
        "Prometheus shortened it: {status}"
    );
    let everything = daemon.process.log() + &status;
    assert!(
        !everything.contains(&secret[..7]),
        "a prefix leaked:\n{everything}"
    );
}

#[test]
fn metrics_pass_promtool_as_text_and_a_real_prometheus_as_openmetrics() {
    let mut pod = Pod::new();
    pod.publish(&config(&["x"]));
    let daemon = pod.daemon("http://127.0.0.1:1/-/reload", &[]);
    daemon.wait_metric_at_least("reloader_reloads_failed_total", 1.0, WAIT);
    let client = reqwest::blocking::Client::new();
    let url = format!("{}/metrics", daemon.admin);
    // The classic text format by default, checked by promtool.
    let classic = client.get(&url).send().unwrap();
    let kind = classic.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let text = classic.text().unwrap();
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // OpenMetrics for clients that ask, as Prometheus does.
    let om = client
        .get(&url)
        .header(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )
        .send()
        .unwrap();
    let kind = om.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    assert!(om.text().unwrap().ends_with("# EOF\n"));
    // A real Prometheus scrapes it (negotiating OpenMetrics) without errors.
    let target = daemon.admin.trim_start_matches("http://").to_string();
    let dir = tempfile::tempdir().unwrap();
    let scrape = dir.path().join("scrape.yaml");
    fs::write(
        &scrape,
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n- job_name: promreload\n  static_configs: [{{targets: ['{target}']}}]\n"
        ),
    )
    .unwrap();
    let prometheus = Prometheus::start(&scrape);
    wait_until(WAIT, "Prometheus scraped reloader_build_info", || {
        prometheus.query_value("reloader_build_info") == Some(1.0)
            && prometheus.query_value("up{job=\"promreload\"}") == Some(1.0)
    });
    assert!(
        prometheus
            .query_value("reloader_reloads_failed_total")
            .unwrap_or(0.0)
            >= 1.0
    );
}

#[test]
fn a_bad_listen_address_exits_2_naming_the_setting() {
    for (env, args, name) in [
        (vec![], vec!["--listen-address=8080"], "--listen-address"),
        (
            vec![("RELOADER_LISTEN_ADDRESS", ":abc")],
            vec![],
            "RELOADER_LISTEN_ADDRESS",
        ),
    ] {
        let mut env = env;
        env.push(("RELOADER_CONFIG_FILE", "/in.gz"));
        let (status, out) = run_promreload(&env, &args);
        assert_eq!(status.code(), Some(2), "{out}");
        assert!(out.contains(name), "{out}");
    }
}

/// A minimal image may have no CA bundle at all (the node tests' image has none). Plain HTTP
/// to Prometheus must not need one: the sidecar starts and reloads. (reqwest 0.13's
/// platform verifier refuses to build a client without system CA certificates; this test
/// keeps such an upgrade from landing unnoticed.)
#[test]
fn no_system_ca_certificates_is_fine_for_a_plain_http_reload() {
    let mut pod = Pod::new();
    pod.publish(&config(&["job-a"]));
    let mock = ok_mock();
    let missing = "/nonexistent/promreload-test-no-ca";
    let daemon = pod.daemon(
        &mock.url("/-/reload"),
        &[("SSL_CERT_FILE", missing), ("SSL_CERT_DIR", missing)],
    );
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
    assert_eq!(daemon.metric("reloader_reloads_failed_total"), 0.0);
}
