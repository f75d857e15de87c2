//! The sidecar against real parts: a kubelet-style Secret volume, the real `promreload`
//! binary, and a real Prometheus whose loaded config (`/api/v1/status/config`) is the truth.

use std::fs;
use std::time::Duration;

use crate::support::pod::*;
use crate::support::*;

fn wait_loaded(prometheus: &Prometheus, what: &str, f: impl Fn(&str) -> bool) {
    wait_until(WAIT, what, || f(&prometheus.loaded_config()));
}

#[test]
fn every_swap_becomes_live_with_variables_expanded() {
    let (mut pod, prometheus, daemon) = running_pod(&["job-a"]);
    let loaded = prometheus.loaded_config();
    assert!(loaded.contains("job_name: job-a"), "{loaded}");
    assert!(
        loaded.contains("prometheus_replica: prometheus-k8s-7"),
        "{loaded}"
    );
    assert!(loaded.contains("shard: \"3\""), "{loaded}");
    assert!(loaded.contains("regex: 3|.*"), "{loaded}");
    assert!(!loaded.contains("$("), "{loaded}");

    // The second and third swaps: a watch on the key file would miss these.
    for jobs in [
        &["job-a", "job-b"][..],
        &["job-c"][..],
        &["job-c", "job-d"][..],
    ] {
        assert!(pod.publish(&config(jobs)));
        wait_loaded(&prometheus, &format!("Prometheus loads {jobs:?}"), |c| {
            jobs.iter().all(|j| c.contains(&format!("job_name: {j}")))
                && c.matches("job_name:").count() == jobs.len()
        });
    }
    assert_eq!(daemon.metric("reloader_reloads_failed_total"), 0.0);
    let mode = fs::metadata(pod.output()).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o644
    );
}

#[test]
fn identical_swap_causes_no_reload() {
    let (mut pod, prometheus, daemon) = running_pod(&["job-a"]);
    let reloads = daemon.metric("reloader_reloads_total");
    let applies = daemon.metric("reloader_config_apply_operations_total");
    let (config_time, _) = prometheus.runtime_info();
    let before = fs::metadata(pod.output()).unwrap().modified().unwrap();

    // Same bytes re-projected, then the same config with a different gzip header (mtime).
    pod.volume
        .force_update(&[(KEY, &gzip(config(&["job-a"]).as_bytes()))]);
    let mut other_header = gzip(config(&["job-a"]).as_bytes());
    other_header[4] = 1;
    pod.publish_raw(&other_header);
    daemon.wait_metric_at_least(
        "reloader_config_apply_operations_total",
        applies + 2.0,
        WAIT,
    );
    wait_until(WAIT, "no reload pending", || {
        daemon.status()["reload_pending"] == false
    });

    assert_eq!(daemon.metric("reloader_reloads_total"), reloads);
    assert_eq!(
        prometheus.runtime_info().0,
        config_time,
        "Prometheus was reloaded"
    );
    let after = fs::metadata(pod.output()).unwrap().modified().unwrap();
    assert_eq!(before, after, "unchanged output was rewritten");
}

#[test]
fn prometheus_down_at_start_gets_its_reload_when_up() {
    let mut pod = Pod::new();
    pod.publish(&config(&["early"]));
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/-/reload");
    let daemon = pod.daemon(&url, &[]);
    daemon.wait_metric_at_least("reloader_reload_errors_total{kind=\"connect\"}", 3.0, WAIT);
    assert_eq!(
        daemon.get("/readyz").0,
        200,
        "readiness must not wait for Prometheus"
    );
    let log = daemon.process.log();
    assert_eq!(
        log.matches("Prometheus not answering yet").count(),
        1,
        "{log}"
    );

    let prometheus = Prometheus::start_on(port, &pod.output());
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
    assert!(prometheus.loaded_config().contains("job_name: early"));
    assert!(daemon.metric("reloader_last_reload_success_timestamp_seconds") > 0.0);
}

#[test]
fn rejected_config_is_retried_with_backoff_and_next_good_config_loads() {
    let (mut pod, prometheus, daemon) = running_pod(&["good-1"]);
    pod.publish("global:\n  scrape_interval: banana\n");
    daemon.wait_metric_at_least("reloader_reload_errors_total{kind=\"status\"}", 3.0, WAIT);
    assert_eq!(daemon.metric("reloader_last_reload_successful"), 0.0);
    let status = daemon.status();
    let error = status["last_reload"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("500"), "{status}");
    assert_eq!(status["reload_pending"], true);
    assert!(
        prometheus.loaded_config().contains("job_name: good-1"),
        "old config stays live"
    );

    pod.publish(&config(&["good-2"]));
    wait_loaded(&prometheus, "the fixed config loads", |c| {
        c.contains("job_name: good-2")
    });
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
    assert!(prometheus.runtime_info().1, "reloadConfigSuccess");
}

#[test]
fn rollback_to_last_good_config_after_a_failure_reloads() {
    let (mut pod, prometheus, daemon) = running_pod(&["good"]);
    pod.publish("global:\n  scrape_interval: banana\n");
    daemon.wait_metric_at_least("reloader_reloads_failed_total", 1.0, WAIT);
    wait_until(WAIT, "Prometheus reports the failed reload", || {
        !prometheus.runtime_info().1
    });
    pod.publish(&config(&["good"]));
    wait_until(WAIT, "Prometheus reports success again", || {
        prometheus.runtime_info().1
    });
    assert_eq!(daemon.metric("reloader_last_reload_successful"), 1.0);
}

#[test]
fn unset_variables_are_kept_as_text_by_default() {
    let mut pod = Pod::new();
    pod.publish("global:\n  external_labels:\n    a: $(NOT_SET_ANYWHERE)\n");
    let daemon = pod.daemon("http://127.0.0.1:1/-/reload", &[]);
    wait_until(WAIT, "output written", || pod.output().exists());
    assert!(pod.output_text().contains("a: $(NOT_SET_ANYWHERE)"));
    daemon.wait_metric_at_least(
        "reloader_config_environment_variable_expansion_errors",
        1.0,
        WAIT,
    );
    let log = daemon.process.log();
    assert!(
        log.contains("NOT_SET_ANYWHERE"),
        "the variable is named: {log}"
    );
}

#[test]
fn strict_env_refuses_unset_variables_and_keeps_last_good_output() {
    let mut pod = Pod::new();
    pod.publish(&config(&["good"]));
    let daemon = pod.daemon(
        "http://127.0.0.1:1/-/reload",
        &[("RELOADER_STRICT_ENV", "true")],
    );
    wait_until(WAIT, "output written", || pod.output().exists());
    let good = pod.output_text();
    pod.publish("global:\n  external_labels:\n    a: $(NOT_SET_ANYWHERE)\n");
    daemon.wait_metric_at_least(
        "reloader_config_apply_errors_total{kind=\"unset_variables\"}",
        1.0,
        WAIT,
    );
    assert_eq!(pod.output_text(), good);
    assert!(daemon.process.log().contains("NOT_SET_ANYWHERE"));
    let (status, log) = pod.init(&[("RELOADER_STRICT_ENV", "true")]);
    assert_eq!(status.code(), Some(1), "{log}");
}

#[test]
fn corrupt_gzip_and_gzip_bomb_keep_the_last_good_config() {
    let (mut pod, prometheus, daemon) = running_pod(&["good"]);
    let good = pod.output_text();

    let valid = gzip(config(&["never"]).as_bytes());
    pod.publish_raw(&valid[..valid.len() / 2]);
    daemon.wait_metric_at_least(
        "reloader_config_apply_errors_total{kind=\"decode\"}",
        1.0,
        WAIT,
    );
    assert_eq!(pod.output_text(), good);

    // 1 GiB of text, about 1 MiB compressed, against a 1 MiB cap.
    let bomb = gzip_bomb(1024);
    drop(daemon);
    let daemon = pod.daemon(
        &prometheus.reload_url(),
        &[("RELOADER_MAX_CONFIG_BYTES", "1MiB")],
    );
    daemon.wait_metric_at_least("reloader_config_apply_operations_total", 1.0, WAIT);
    pod.publish_raw(&bomb);
    daemon.wait_metric_at_least(
        "reloader_config_apply_errors_total{kind=\"too_large\"}",
        1.0,
        WAIT,
    );
    assert_eq!(pod.output_text(), good);
    assert!(
        daemon.process.peak_rss_kib() < 64 * 1024,
        "memory stays bounded"
    );
    let log = daemon.process.log();
    assert!(log.contains("RELOADER_MAX_CONFIG_BYTES"), "{log}");
    assert!(prometheus.loaded_config().contains("job_name: good"));
}

#[test]
fn init_mode_exit_codes() {
    let mut pod = Pod::new();
    let (status, log) = pod.init(&[]);
    assert_eq!(status.code(), Some(1), "missing input: {log}");
    assert!(log.contains("does not exist"), "{log}");

    pod.publish_raw(b"\x1f\x8b\x08garbage");
    let (status, log) = pod.init(&[]);
    assert_eq!(status.code(), Some(1), "corrupt gzip: {log}");
    assert!(log.contains("corrupt or truncated gzip"), "{log}");
    assert!(!pod.output().exists());

    pod.publish(&config(&["a"]));
    let (status, log) = pod.init(&[("RELOADER_MAX_CONFIG_BYTES", "10")]);
    assert_eq!(status.code(), Some(1), "over the cap: {log}");

    let (status, log) = pod.init(&[]);
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        pod.output_text()
            .contains("prometheus_replica: prometheus-k8s-7")
    );
    assert!(
        !log.contains("admin server listening"),
        "no server in init mode: {log}"
    );

    let (status, log) = pod.init(&[("RELOADER_RELOAD_TIMEOUT", "forever")]);
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("RELOADER_RELOAD_TIMEOUT"), "{log}");
}

#[test]
fn missing_input_is_waited_for_and_not_ready_meanwhile() {
    let mut pod = Pod::new();
    let daemon = pod.daemon("http://127.0.0.1:1/-/reload", &[]);
    assert_eq!(daemon.get("/healthz").0, 200);
    assert_eq!(daemon.get("/readyz").0, 503);
    pod.publish(&config(&["late"]));
    wait_until(WAIT, "ready once the config exists", || {
        daemon.get("/readyz").0 == 200
    });
    assert!(pod.output_text().contains("job_name: late"));
    assert!(daemon.process.child.id() > 0);
}

#[test]
fn a_restart_over_a_refused_input_stays_ready_on_the_earlier_output() {
    let mut pod = Pod::new();
    pod.publish(&config(&["good"]));
    let daemon = pod.daemon("http://127.0.0.1:1/-/reload", &[]);
    wait_until(WAIT, "output written", || {
        pod.output().exists() && pod.output_text().contains("job_name: good")
    });
    drop(daemon);
    // The input goes bad while no sidecar runs; a new one starts over it.
    pod.publish_raw(b"\x1f\x8b not gzip at all");
    let daemon = pod.daemon("http://127.0.0.1:1/-/reload", &[]);
    wait_until(WAIT, "the refusal is reported", || {
        daemon.status()["last_apply_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    });
    assert_eq!(
        daemon.get("/readyz").0,
        200,
        "Prometheus runs on the earlier output: the Pod stays ready"
    );
    assert!(pod.output_text().contains("job_name: good"), "output kept");
}

#[test]
fn sigterm_exits_zero_within_a_second() {
    let mut pod = Pod::new();
    pod.publish(&config(&["a"]));
    let mut daemon = pod.daemon("http://127.0.0.1:1/-/reload", &[]);
    wait_until(WAIT, "output written", || pod.output().exists());
    daemon.process.signal("TERM");
    let status = daemon
        .process
        .wait_exit(Duration::from_secs(1))
        .expect("exited within a second");
    assert_eq!(status.code(), Some(0));
}
