//! A Pod's files as the tests see them: a kubelet-style Secret volume holding
//! `prometheus.yaml.gz`, the `config_out` directory, and the operator's environment.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

/// How long a test waits for something that should happen in well under a second.
pub const WAIT: Duration = Duration::from_secs(20);

pub const KEY: &str = "prometheus.yaml.gz";

/// A Prometheus config with the given job names, external labels taken from `$(POD_NAME)`
/// and `$(SHARD)` as prometheus-operator generates them.
pub fn config(jobs: &[&str]) -> String {
    let mut s = String::from(
        "global:\n  scrape_interval: 1m\n  external_labels:\n    prometheus_replica: $(POD_NAME)\n    shard: \"$(SHARD)\"\nscrape_configs:\n",
    );
    for job in jobs {
        s.push_str(&format!(
            "- job_name: {job}\n  static_configs:\n  - targets: ['127.0.0.1:9']\n  relabel_configs:\n  - source_labels: [__tmp_hash]\n    regex: $(SHARD)|.*\n    action: keep\n"
        ));
    }
    s
}

/// One Pod's files: the Secret volume and the output directory.
pub struct Pod {
    pub root: tempfile::TempDir,
    pub volume: KubeletVolume,
}

impl Pod {
    pub fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let volume = KubeletVolume::new(&root.path().join("config"));
        fs::create_dir(root.path().join("config_out")).expect("config_out");
        Self { root, volume }
    }

    pub fn publish(&mut self, yaml: &str) -> bool {
        self.volume.update(&[(KEY, &gzip(yaml.as_bytes()))])
    }

    pub fn publish_raw(&mut self, bytes: &[u8]) {
        self.volume.update(&[(KEY, bytes)]);
    }

    pub fn output(&self) -> PathBuf {
        self.root.path().join("config_out/prometheus.env.yaml")
    }

    pub fn output_text(&self) -> String {
        fs::read_to_string(self.output()).expect("output file")
    }

    /// The environment of the operator's containers, plus fast retries for tests.
    pub fn env(&self, reload_url: &str) -> Vec<(String, String)> {
        vec![
            ("POD_NAME".into(), "prometheus-k8s-7".into()),
            ("SHARD".into(), "3".into()),
            (
                "RELOADER_CONFIG_FILE".into(),
                self.volume.key_path(KEY).display().to_string(),
            ),
            (
                "RELOADER_CONFIG_ENVSUBST_FILE".into(),
                self.output().display().to_string(),
            ),
            ("RELOADER_RELOAD_URL".into(), reload_url.into()),
            ("RELOADER_DELAY_INTERVAL".into(), "200ms".into()),
            ("RELOADER_RETRY_INTERVAL".into(), "100ms".into()),
            ("RELOADER_RETRY_MAX_INTERVAL".into(), "400ms".into()),
        ]
    }

    pub fn init(&self, extra: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
        let mut env = self.env("http://127.0.0.1:1/-/reload");
        env.push(("RELOADER_WATCH_INTERVAL".into(), "0".into()));
        let mut pairs = borrow(&env);
        pairs.extend_from_slice(extra);
        run_promreload(&pairs, &[])
    }

    pub fn daemon(&self, reload_url: &str, extra: &[(&str, &str)]) -> Daemon {
        let env = self.env(reload_url);
        let mut pairs = borrow(&env);
        pairs.extend_from_slice(extra);
        Daemon::start(&pairs, &[])
    }
}

pub fn borrow(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Init container, Prometheus, then the sidecar, as in a Pod; waits for the first reload.
pub fn running_pod(jobs: &[&str]) -> (Pod, Prometheus, Daemon) {
    let mut pod = Pod::new();
    pod.publish(&config(jobs));
    let (status, log) = pod.init(&[]);
    assert!(status.success(), "init mode failed: {log}");
    let prometheus = Prometheus::start(&pod.output());
    let daemon = pod.daemon(&prometheus.reload_url(), &[]);
    daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT);
    (pod, prometheus, daemon)
}
