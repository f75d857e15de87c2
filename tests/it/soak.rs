//! Soak: 1,000 kubelet-style swaps (`SOAK_SWAPS` to change) at random intervals, some
//! faster than the throttle and some identical re-projections, against a real Prometheus.
//!
//! A recording proxy sits between the sidecar and Prometheus: at each reload it notes which
//! config (the `seq` external label) the output file held, then forwards the reload. Checked:
//! the final config is the one loaded; every config that stood longer than the throttle
//! window (plus a margin for processing) was reloaded; no reload repeated the config of the
//! previous one (identical swaps cause no reload); memory does not grow.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::mock::{MockServer, Reply};
use crate::support::pod::*;
use crate::support::*;

const DELAY: Duration = Duration::from_millis(50);
/// Processing allowance on top of the throttle window (render, write, Prometheus's reload).
const MARGIN: Duration = Duration::from_millis(250);

fn soak_config(seq: usize) -> String {
    format!(
        "global:\n  scrape_interval: 1m\n  external_labels:\n    seq: \"{seq}\"\n    replica: $(POD_NAME)\nscrape_configs:\n- job_name: job-{}\n  static_configs:\n  - targets: ['127.0.0.1:9']\n",
        seq % 7
    )
}

fn seq_of(text: &str) -> Option<usize> {
    let rest = &text[text.find("seq: \"")? + 6..];
    rest[..rest.find('"')?].parse().ok()
}

#[test]
fn soak_swaps_against_a_real_prometheus() {
    let swaps: usize = std::env::var("SOAK_SWAPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut pod = Pod::new();
    pod.publish(&soak_config(0));
    assert!(pod.init(&[]).0.success());
    let prometheus = Prometheus::start(&pod.output());

    let reloaded: Arc<Mutex<Vec<usize>>> = Arc::default();
    let (record, output, target) = (reloaded.clone(), pod.output(), prometheus.reload_url());
    let client = reqwest::blocking::Client::new();
    let proxy = MockServer::start(move |_| {
        let seq = std::fs::read_to_string(&output)
            .ok()
            .and_then(|t| seq_of(&t));
        record.lock().unwrap().push(seq.unwrap_or(usize::MAX));
        let status = client
            .post(&target)
            .send()
            .map_or(502, |r| r.status().as_u16());
        Reply::Http(status, vec![], String::new())
    });
    let daemon = pod.daemon(
        &proxy.url("/-/reload"),
        &[("RELOADER_DELAY_INTERVAL", "50ms")],
    );
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
    let rss_start = rss_kib(daemon.process.child.id());

    let mut rng = fastrand::Rng::with_seed(42);
    let mut published: Vec<(usize, Instant)> = vec![(0, Instant::now())];
    let mut current = gzip(soak_config(0).as_bytes());
    for i in 1..=swaps {
        if rng.u8(0..10) == 0 {
            pod.volume.force_update(&[(KEY, &current)]);
        } else {
            current = gzip(soak_config(i).as_bytes());
            pod.publish_raw(&current);
            published.push((i, Instant::now()));
        }
        let pause = if i % 50 == 0 { 300 } else { rng.u64(0..30) };
        std::thread::sleep(Duration::from_millis(pause));
    }
    let end = Instant::now();
    let last = published.last().unwrap().0;
    wait_until(WAIT, "the final config is loaded", || {
        seq_of(&prometheus.loaded_config()) == Some(last)
    });

    let reloaded = reloaded.lock().unwrap().clone();
    let mut must = Vec::new();
    for (k, (seq, at)) in published.iter().enumerate() {
        let until = published.get(k + 1).map_or(end, |(_, t)| *t);
        if until.duration_since(*at) > DELAY + MARGIN {
            must.push(*seq);
        }
    }
    let missed: Vec<&usize> = must.iter().filter(|s| !reloaded.contains(s)).collect();
    let repeats = reloaded.windows(2).filter(|w| w[0] == w[1]).count();
    let rss_end = rss_kib(daemon.process.child.id());
    eprintln!(
        "{swaps} swaps, {} distinct configs, {} reloads, {} configs stood > {:?}, RSS {rss_start} -> {rss_end} KiB",
        published.len(),
        reloaded.len(),
        must.len(),
        DELAY + MARGIN
    );
    assert!(
        missed.is_empty(),
        "configs that stood long but were never reloaded: {missed:?}"
    );
    assert_eq!(
        repeats, 0,
        "a reload repeated the previous config: {reloaded:?}"
    );
    assert_eq!(daemon.metric("reloader_reloads_failed_total"), 0.0);
    assert!(
        rss_end <= rss_start + 4 * 1024,
        "RSS grew from {rss_start} to {rss_end} KiB"
    );
}
