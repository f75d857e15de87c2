//! Faults and bad input: the last good config is never lost, every problem is named, and the
//! daemon keeps working. Real files, real signals, a real Prometheus where one can produce
//! the fault; a scripted mock where it cannot (hangs, redirects, dropped connections).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::mock::{MockServer, Reply};
use crate::support::pod::*;
use crate::support::*;

const NOWHERE: &str = "http://127.0.0.1:1/-/reload";

/// A config of about `bytes` bytes whose last line names it, so a partial file shows.
fn big_config(tag: &str, bytes: usize) -> String {
    let mut s = format!("# config {tag}\nglobal:\n  external_labels:\n    replica: $(POD_NAME)\n");
    let mut i = 0;
    while s.len() < bytes {
        s.push_str(&format!(
            "# padding line {i:09} of config {tag}, long enough to add up quickly\n"
        ));
        i += 1;
    }
    s.push_str(&format!("# end of config {tag}\n"));
    s
}

/// What the daemon writes for `config` in the test Pod's environment.
fn rendered(config: &str) -> String {
    config
        .replace("$(POD_NAME)", "prometheus-k8s-7")
        .replace("$(SHARD)", "3")
}

fn fast_gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, data).unwrap();
    e.finish().unwrap()
}

#[test]
fn kill_9_at_random_points_never_leaves_a_partial_output() {
    let _turn = heavy();
    let mut pod = Pod::new();
    let configs = [big_config("A", 6 << 20), big_config("B", 6 << 20)];
    let zipped: Vec<Vec<u8>> = configs.iter().map(|c| fast_gzip(c.as_bytes())).collect();
    let wanted: Vec<String> = configs.iter().map(|c| rendered(c)).collect();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut kills_mid_write = 0;
    for round in 0..24 {
        pod.publish_raw(&zipped[round % 2]);
        let mut daemon = pod.daemon(NOWHERE, &[]);
        std::thread::sleep(Duration::from_millis(rng.u64(0..400)));
        if pod
            .root
            .path()
            .join("config_out/.prometheus.env.yaml.promreload-tmp")
            .exists()
        {
            kills_mid_write += 1;
        }
        daemon.process.signal("KILL");
        daemon
            .process
            .wait_exit(Duration::from_secs(5))
            .expect("killed");
        if let Ok(out) = fs::read_to_string(pod.output()) {
            assert!(
                wanted.contains(&out),
                "round {round}: partial or foreign output ({} bytes, ends {:?})",
                out.len(),
                &out[out.len().saturating_sub(40)..]
            );
        }
    }
    eprintln!("24 kill -9 rounds, {kills_mid_write} while a temporary file was being written");
    let daemon = pod.daemon(NOWHERE, &[]);
    wait_until(
        WAIT,
        "a restarted daemon converges on the current input",
        || fs::read_to_string(pod.output()).is_ok_and(|o| o == wanted[1]),
    );
    assert_eq!(
        daemon.metric("reloader_config_apply_operations_failed_total"),
        0.0
    );
}

/// Publishes `input`, waits for the apply error `kind`, and checks the good output stayed.
fn expect_refused(pod: &mut Pod, daemon: &Daemon, input: &[u8], kind: &str, good: &str) {
    let sample = format!("reloader_config_apply_errors_total{{kind=\"{kind}\"}}");
    let before = daemon.metric(&sample);
    pod.publish_raw(input);
    daemon.wait_metric_at_least(&sample, before + 1.0, WAIT);
    assert_eq!(
        pod.output_text(),
        good,
        "{kind}: the last good output must stay"
    );
}

#[test]
fn bad_inputs_are_named_and_the_last_good_output_stays() {
    let _turn = heavy();
    let mut pod = Pod::new();
    let good_config = config(&["good"]);
    pod.publish(&good_config);
    let daemon = pod.daemon(NOWHERE, &[("RELOADER_MAX_CONFIG_BYTES", "12MiB")]);
    wait_until(WAIT, "the good config is written", || pod.output().exists());
    let good = pod.output_text();

    let valid = gzip(config(&["never"]).as_bytes());
    expect_refused(&mut pod, &daemon, b"", "empty", &good);
    expect_refused(
        &mut pod,
        &daemon,
        b"\x8f\x02\x00\x13binary \x00 garbage",
        "not_text",
        &good,
    );
    expect_refused(
        &mut pod,
        &daemon,
        b"a: \xff\xfe invalid utf-8\n",
        "not_text",
        &good,
    );
    for cut in [4, 10, valid.len() / 2, valid.len() - 1] {
        expect_refused(&mut pod, &daemon, &valid[..cut], "decode", &good);
    }
    let mut bad_crc = valid.clone();
    let n = bad_crc.len();
    bad_crc[n - 6] ^= 0x55;
    expect_refused(&mut pod, &daemon, &bad_crc, "decode", &good);
    let mut trailing = valid.clone();
    trailing.extend_from_slice(b"trailing junk");
    expect_refused(&mut pod, &daemon, &trailing, "decode", &good);

    // 1 GiB of zeros (about 1 MiB gzipped) against a 12 MiB cap: memory stays flat.
    let bomb = gzip_bomb(1024);
    expect_refused(&mut pod, &daemon, &bomb, "too_large", &good);
    let peak = daemon.process.peak_rss_kib();
    eprintln!("peak RSS after a 1 GiB gzip bomb: {peak} KiB");
    assert!(
        peak < 40 * 1024,
        "peak RSS {peak} KiB: memory must not follow the bomb"
    );
    let log = daemon.process.log();
    for needle in [
        "is empty",
        "not text",
        "corrupt or truncated gzip",
        "RELOADER_MAX_CONFIG_BYTES",
    ] {
        assert!(log.contains(needle), "the log names {needle:?}:\n{log}");
    }

    // Good inputs of unusual shape still pass.
    let mut two = gzip(b"a: 1\n");
    two.extend(gzip(b"b: 2\n"));
    pod.publish_raw(&two);
    wait_until(WAIT, "concatenated members are both decoded", || {
        pod.output_text() == "a: 1\nb: 2\n"
    });
    let line = format!("x: \"{}\"\n", "y".repeat(10 << 20));
    pod.publish_raw(&gzip(line.as_bytes()));
    wait_until(WAIT, "a 10 MB single line is written", || {
        fs::metadata(pod.output()).is_ok_and(|m| m.len() == line.len() as u64)
    });
}

#[test]
fn references_straddling_buffer_boundaries_and_edge_names_expand() {
    let mut pod = Pod::new();
    let long_name = "N".repeat(1024);
    let too_long = "M".repeat(1025);
    let huge_value = "v".repeat(100_000);
    // References placed around the 64 KiB read-buffer boundaries.
    let mut input = String::new();
    for boundary in 1..4 {
        let target = boundary * 65_536 - 5;
        while input.len() < target {
            input.push_str("# filler\n");
        }
        input.truncate(target);
        input.push_str("$(POD_NAME)\n");
    }
    input.push_str(&format!(
        "a: $({long_name})\nb: $({too_long})\nc: $(HUGE)$(HUGE)\nd: $("
    ));
    let expected = input
        .replace("$(POD_NAME)", "prometheus-k8s-7")
        .replace(&format!("$({long_name})"), "long")
        .replace("$(HUGE)", &huge_value);
    pod.publish_raw(&gzip(input.as_bytes()));
    let env = pod.env(NOWHERE);
    let mut pairs = borrow(&env);
    pairs.push((&long_name, "long"));
    pairs.push(("HUGE", &huge_value));
    let (status, log) = run_promreload(
        &[pairs, vec![("RELOADER_WATCH_INTERVAL", "0")]].concat(),
        &[],
    );
    assert!(status.success(), "{log}");
    assert!(
        pod.output_text() == expected,
        "expansion differs from the expected text"
    );
}

#[test]
fn unusable_inputs_and_outputs_are_named() {
    let mut pod = Pod::new();
    pod.publish(&config(&["good"]));
    let daemon = pod.daemon(NOWHERE, &[]);
    wait_until(WAIT, "output written", || pod.output().exists());
    let good = pod.output_text();
    let key = pod.volume.key_path(KEY);
    let target = fs::read_link(&key).unwrap();

    let swap_key = |make: &dyn Fn(&Path)| {
        fs::remove_file(&key).unwrap();
        make(&key);
    };
    let refused = |label: &str, text: &str| {
        let sample = format!("reloader_config_apply_errors_total{{kind=\"{label}\"}}");
        let before = daemon.metric(&sample);
        // The key changed without a kubelet swap: nudge the watch with an event.
        fs::write(pod.volume.dir().join("nudge"), format!("{before}")).unwrap();
        daemon.wait_metric_at_least(&sample, before + 1.0, WAIT);
        assert_eq!(pod.output_text(), good);
        assert!(daemon.process.log().contains(text), "log names {text:?}");
    };
    swap_key(&|k| fs::create_dir(k).unwrap());
    refused("read", "not a regular file");
    fs::remove_dir(&key).unwrap();
    std::os::unix::fs::symlink("does-not-exist", &key).unwrap();
    refused("missing", "does not exist");
    swap_key(&|k| std::os::unix::fs::symlink(k.file_name().unwrap(), k).unwrap());
    refused("read", "symbolic links");
    swap_key(&|k| std::os::unix::fs::symlink("/etc/passwd", k).unwrap());
    refused("symlink_escape", "outside");
    swap_key(&|k| std::os::unix::fs::symlink(&target, k).unwrap());
    fs::write(pod.volume.dir().join("nudge"), "back").unwrap();
    wait_until(WAIT, "the daemon recovers", || {
        daemon.status()["last_apply_error"].is_null()
    });
}

/// Runs promreload as the unprivileged user `nobody` (root ignores file permissions).
fn as_nobody(root: &Path, env: &[(String, String)]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(promreload_bin())
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RELOADER_WATCH_INTERVAL", "0")
        .current_dir(root)
        .output()
        .expect("run setpriv")
}

#[test]
fn unreadable_input_read_only_and_full_outputs_keep_the_old_file() {
    let mut pod = Pod::new();
    pod.publish(&config(&["good"]));
    let root = pod.root.path().to_path_buf();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(root.join("config_out"), fs::Permissions::from_mode(0o777)).unwrap();
    let env = pod.env(NOWHERE);
    let out = as_nobody(&root, &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let good = pod.output_text();

    // No read permission on the payload.
    let payload = fs::canonicalize(pod.volume.key_path(KEY)).unwrap();
    fs::set_permissions(&payload, fs::Permissions::from_mode(0o000)).unwrap();
    let out = as_nobody(&root, &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    assert_eq!(pod.output_text(), good);
    fs::set_permissions(&payload, fs::Permissions::from_mode(0o644)).unwrap();

    // A read-only output directory.
    pod.publish(&config(&["newer"]));
    fs::set_permissions(root.join("config_out"), fs::Permissions::from_mode(0o555)).unwrap();
    let out = as_nobody(&root, &env);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("writing output file") && err.contains("Permission denied"),
        "{err}"
    );
    assert_eq!(pod.output_text(), good);

    // A full output filesystem (a 64 KiB tmpfs) with a 200 KB config.
    let full = root.join("full");
    fs::create_dir(&full).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&full)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("cannot mount a tmpfs here; the full-disk case is skipped");
        return;
    }
    let small = full.join("prometheus.env.yaml");
    fs::write(&small, "small: good\n").unwrap();
    pod.publish(&big_config("C", 200_000));
    let mut env = env.clone();
    env.retain(|(k, _)| k != "RELOADER_CONFIG_ENVSUBST_FILE");
    env.push((
        "RELOADER_CONFIG_ENVSUBST_FILE".into(),
        small.display().to_string(),
    ));
    let (status, log) = run_promreload(&borrow(&env), &["--watch-interval=0"]);
    let content = fs::read_to_string(&small).unwrap();
    let _ = Command::new("umount").arg(&full).status();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("No space left on device"), "{log}");
    assert_eq!(content, "small: good\n");
}

#[test]
fn a_removed_and_recreated_watched_dir_is_watched_again() {
    let mut pod = Pod::new();
    pod.publish(&config(&["a"]));
    let rules = pod.root.path().join("rules");
    fs::create_dir(&rules).unwrap();
    fs::write(rules.join("r.yaml"), "groups: []\n").unwrap();
    let mock = MockServer::start(|_| Reply::Http(200, vec![], String::new()));
    let dirs = rules.display().to_string();
    let daemon = pod.daemon(&mock.url("/-/reload"), &[("RELOADER_WATCHED_DIRS", &dirs)]);
    daemon.wait_metric_at_least("reloader_reloads_total", 1.0, WAIT);
    assert_eq!(daemon.metric("reloader_watches"), 2.0);
    fs::remove_dir_all(&rules).unwrap();
    daemon.wait_metric_at_least("reloader_reloads_total", 2.0, WAIT);
    fs::create_dir(&rules).unwrap();
    wait_until(WAIT, "the directory is watched again", || {
        daemon.metric("reloader_watches") == 2.0
    });
    let reloads = daemon.metric("reloader_reloads_total");
    fs::write(rules.join("r.yaml"), "groups: [{name: x, rules: []}]\n").unwrap();
    daemon.wait_metric_at_least("reloader_reloads_total", reloads + 1.0, WAIT);
}

#[test]
fn prometheus_down_for_long_backs_off_quietly_and_recovers_at_once() {
    let _turn = heavy();
    let mut pod = Pod::new();
    pod.publish(&config(&["patient"]));
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/-/reload");
    let daemon = pod.daemon(
        &url,
        &[
            ("RELOADER_RETRY_INTERVAL", "100ms"),
            ("RELOADER_RETRY_MAX_INTERVAL", "30s"),
        ],
    );
    // Down for about 7 s: the backoff reaches several seconds.
    wait_until(WAIT, "backoff has grown", || {
        daemon.metric("reloader_reloads_failed_total") >= 6.0
    });
    let attempts = daemon.metric("reloader_reloads_failed_total");
    let log = daemon.process.log();
    let lines = log.matches("reload failed").count() + log.matches("not answering yet").count();
    eprintln!("{attempts} failed attempts, {lines} log lines while Prometheus was down");
    assert!(lines <= 3, "log flood: {lines} lines\n{log}");
    let up = Instant::now();
    let prometheus = Prometheus::start_on(port, &pod.output());
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
    let recovered = up.elapsed();
    eprintln!("reloaded {recovered:?} after Prometheus started (backoff cap 30 s)");
    assert!(
        recovered < Duration::from_secs(5),
        "recovery waited for the backoff: {recovered:?}"
    );
    assert!(prometheus.loaded_config().contains("job_name: patient"));
}

#[test]
fn slow_hanging_redirecting_and_crashing_endpoints_are_retried() {
    let cases: Vec<(&str, Reply, &str)> = vec![
        ("slow", Reply::Slow(Duration::from_secs(2), 200), "timeout"),
        ("hang", Reply::Hang, "timeout"),
        (
            "redirect",
            Reply::Http(
                302,
                vec![("Location".into(), "/elsewhere".into())],
                String::new(),
            ),
            "status",
        ),
        ("crash", Reply::Close, "request"),
    ];
    for (name, first, kind) in cases {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = calls.clone();
        let first = std::sync::Mutex::new(Some(first));
        let mock = MockServer::start(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            first
                .lock()
                .unwrap()
                .take()
                .unwrap_or(Reply::Http(200, vec![], String::new()))
        });
        let mut pod = Pod::new();
        pod.publish(&config(&[name]));
        let daemon = pod.daemon(
            &mock.url("/-/reload"),
            &[("RELOADER_RELOAD_TIMEOUT", "500ms")],
        );
        let sample = format!("reloader_reload_errors_total{{kind=\"{kind}\"}}");
        daemon.wait_metric_at_least(&sample, 1.0, WAIT);
        daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
        if name == "redirect" {
            assert!(
                daemon
                    .process
                    .log()
                    .contains("redirect to /elsewhere not followed")
            );
        }
        assert!(
            calls.load(std::sync::atomic::Ordering::SeqCst) >= 2,
            "{name}: retried"
        );
    }
}

#[test]
fn sigterm_during_render_retry_and_write_exits_zero_with_output_intact() {
    let _turn = heavy();
    let mut pod = Pod::new();
    let big = big_config("T", 8 << 20);
    let zipped = fast_gzip(big.as_bytes());
    for phase in ["render", "retry", "write"] {
        pod.publish(&config(&[phase]));
        let (status, _) = pod.init(&[]);
        assert!(status.success());
        let mut daemon = pod.daemon(NOWHERE, &[]);
        wait_until(WAIT, "a reload is being retried", || {
            daemon.metric("reloader_reloads_failed_total") >= 1.0
        });
        if phase != "retry" {
            pod.publish_raw(&zipped);
            if phase == "write" {
                wait_until(WAIT, "the temporary file is being written", || {
                    pod.root
                        .path()
                        .join("config_out/.prometheus.env.yaml.promreload-tmp")
                        .exists()
                        || pod.output_text().ends_with("# end of config T\n")
                });
            }
        }
        let start = Instant::now();
        daemon.process.signal("TERM");
        let status = daemon
            .process
            .wait_exit(Duration::from_secs(5))
            .expect("exits");
        let took = start.elapsed();
        eprintln!("SIGTERM during {phase}: exit {status} in {took:?}");
        assert_eq!(status.code(), Some(0), "{phase}");
        assert!(took < Duration::from_secs(2), "{phase}: {took:?}");
        let out = pod.output_text();
        assert!(
            out == rendered(&config(&[phase])) || out == rendered(&big),
            "{phase}: output must be a complete old or new config"
        );
    }
}

#[test]
fn secrets_never_reach_logs_status_or_metrics() {
    let mut pod = Pod::new();
    let secret = "s3cr3t-token-value";
    pod.publish("global:\n  scrape_interval: $(API_TOKEN)\n");
    assert!(pod.init(&[("API_TOKEN", secret)]).0.success());
    let prometheus = Prometheus::start(&{
        fs::write(pod.output(), "global: {}\n").unwrap();
        pod.output()
    });
    let daemon = pod.daemon(&prometheus.reload_url(), &[("API_TOKEN", secret)]);
    // Prometheus rejects the config and quotes the bad value in its answer.
    daemon.wait_metric_at_least("reloader_reload_errors_total{kind=\"status\"}", 1.0, WAIT);
    let status = daemon.get("/status").1;
    assert!(status.contains("[redacted]"), "{status}");
    let everything = daemon.process.log() + &status + &daemon.get("/metrics").1;
    assert!(!everything.contains(secret), "the secret leaked");
    let mode = fs::metadata(pod.output()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
}
