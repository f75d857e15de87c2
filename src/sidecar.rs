//! The sidecar: watch -> render -> write -> reload, in one task that owns all the state.
//!
//! Each "maybe changed" (a directory event, the periodic re-check, or a poll while something
//! is missing) runs one apply: render and write the config if its input changed, then hash
//! the output together with the watched directories. A hash that differs from what
//! Prometheus last loaded successfully schedules a reload:
//!
//! - at once for an isolated change; within `delay-interval` of the previous reload attempt,
//!   at the end of that window, so a burst coalesces into one reload of its final state;
//! - after a failure, with exponential backoff and jitter, until it succeeds or a newer
//!   config replaces it (which resets the backoff). While Prometheus refuses connections, its
//!   port is probed every retry interval, so a long backoff does not delay the reload once
//!   Prometheus is back.
//!
//! A failed render leaves the last good output in place and reloads nothing.

pub mod expand;
pub mod output;
pub mod reload;
pub mod render;
pub mod status;
pub mod watch;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use reload::{ReloadError, Reloader, backoff};
use render::{Hash, RenderError, Renderer, hash_dirs, hex};
use status::{ReloadRecord, Shared};
use watch::DirWatcher;

/// Why the sidecar could not run (or, in init mode, could not write the config).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config could not be rendered (init mode).
    #[error(transparent)]
    Render(#[from] RenderError),
    /// A watched directory could not be read (init mode).
    #[error("reading watched directories: {0}")]
    Dirs(std::io::Error),
    /// The file watcher could not be created.
    #[error("creating the file watcher: {0}")]
    Watch(#[from] notify::Error),
    /// The admin server could not listen.
    #[error("listening on {address}: {source}")]
    Listen {
        /// The listen address.
        address: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The reload credentials or TLS files are unusable.
    #[error(transparent)]
    Reload(#[from] ReloadError),
    /// The admin server's TLS files are unusable.
    #[error("admin server TLS: {0}")]
    AdminTls(String),
}

/// Runs the sidecar until `shutdown` is cancelled, or, in init mode, writes the config once.
pub async fn run(
    config: Config,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let mut applier = Applier::new(&config);
    if config.init_mode() {
        let applied = tokio::task::spawn_blocking(move || applier.apply())
            .await
            .expect("render task does not panic")?;
        tracing::info!(hash = %hex(&applied.hash), "config written (init mode)");
        return Ok(());
    }
    let mut reloader = Reloader::new(&config.reload);
    reloader.check()?;
    let shared = Arc::new(Shared::new(metrics.clone()));
    if let Some(address) = &config.listen_address {
        let tls = match &config.web_tls {
            Some(tls) => Some(crate::admin::TlsFiles::load(tls).map_err(Error::AdminTls)?),
            None => None,
        };
        let listener = crate::admin::bind(address)
            .await
            .map_err(|source| Error::Listen {
                address: address.clone(),
                source,
            })?;
        if let Some(addr) = crate::admin::local_addr(&listener) {
            tracing::info!(address = %addr, "admin server listening");
        }
        tokio::spawn(crate::admin::serve(
            listener,
            tls,
            shared.clone(),
            shutdown.clone(),
        ));
    }
    applier.adopt_existing_output();
    let changed = Arc::new(Notify::new());
    let dirs = watch::dirs_to_watch(config.config_file.as_deref(), &config.watched_dirs);
    let watcher = DirWatcher::new(dirs, changed.clone(), metrics.clone())?;
    let mut sidecar = Sidecar {
        config,
        shared: shared.clone(),
        metrics,
        applier: Some(applier),
        reloader,
        watcher,
        desired: None,
        loaded: None,
        attempt: 0,
        last_attempt: None,
        reload_at: None,
        probe_at: None,
        degraded: true,
        last_error: None,
        last_unset: BTreeSet::new(),
        secrets: Vec::new(),
    };
    tracing::info!(
        reload = %sidecar.reloader.target(),
        watched_dirs = sidecar.config.watched_dirs.len(),
        "promreload started"
    );
    sidecar.run(changed, &shutdown).await;
    shared.probes.set_ready(false);
    shared.probes.set_alive(false);
    tracing::info!("promreload stopped");
    Ok(())
}

/// The variable the Go reloader derives from `--statefulset-ordinal-from-envvar`.
pub const ORDINAL_VAR: &str = "STATEFULSET_ORDINAL_NUMBER";

/// The environment variables available to `$(NAME)`, read once, plus
/// `STATEFULSET_ORDINAL_NUMBER`: the trailing digits of `ordinal_from`'s value (possibly empty).
fn environment(ordinal_from: Option<&str>) -> HashMap<String, Vec<u8>> {
    use std::os::unix::ffi::OsStringExt;
    let mut env: HashMap<String, Vec<u8>> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_vec())))
        .collect();
    if let Some(from) = ordinal_from {
        let ordinal = env.get(from).map(|v| trailing_digits(v).to_vec());
        env.insert(ORDINAL_VAR.into(), ordinal.unwrap_or_default());
    }
    env
}

fn trailing_digits(value: &[u8]) -> &[u8] {
    let digits = value
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    &value[value.len() - digits..]
}

/// One apply's blocking work: render the config (if any) and hash the watched dirs.
struct Applier {
    renderer: Option<Renderer>,
    dirs: Vec<PathBuf>,
}

/// The result of one successful apply.
struct Applied {
    hash: Hash,
    written: bool,
    bytes: u64,
    unset: BTreeSet<String>,
    /// Values substituted into the config, to redact from error messages.
    secrets: Vec<String>,
}

/// Values shorter than this are not redacted (`0`, `true`: redacting them would garble
/// messages and protects nothing).
const MIN_REDACTED_LEN: usize = 6;

impl Applier {
    fn new(config: &Config) -> Self {
        let env = environment(config.ordinal_from.as_deref());
        let renderer = config.config_file.clone().map(|input| {
            Renderer::new(
                input,
                config.output_file.clone(),
                config.max_config_bytes,
                config.strict_env,
                env,
            )
        });
        Self {
            renderer,
            dirs: config.watched_dirs.clone(),
        }
    }

    fn adopt_existing_output(&mut self) {
        if let Some(r) = &mut self.renderer {
            r.adopt_existing_output();
        }
    }

    fn apply(&mut self) -> Result<Applied, Error> {
        let rendered = self.renderer.as_mut().map(Renderer::apply).transpose()?;
        let dirs = hash_dirs(&self.dirs).map_err(Error::Dirs)?;
        let mut hasher = Sha256::new();
        if let Some(r) = &rendered {
            hasher.update(b"config\0");
            hasher.update(r.output_hash);
        }
        hasher.update(b"dirs\0");
        hasher.update(dirs);
        let secrets = match (&self.renderer, &rendered) {
            (Some(renderer), Some(r)) => renderer.values(&r.expanded, MIN_REDACTED_LEN),
            _ => Vec::new(),
        };
        Ok(Applied {
            hash: hasher.finalize().into(),
            written: rendered.as_ref().is_some_and(|r| r.written),
            bytes: rendered.as_ref().map_or(0, |r| r.bytes),
            unset: rendered.map(|r| r.unset).unwrap_or_default(),
            secrets,
        })
    }
}

impl Error {
    fn metric_label(&self) -> &'static str {
        match self {
            Self::Render(e) => e.metric_label(),
            Self::Dirs(_) => "watched_dirs",
            _ => "internal",
        }
    }
}

struct Sidecar {
    config: Config,
    shared: Arc<Shared>,
    metrics: Metrics,
    /// `None` only while an apply runs on the blocking pool.
    applier: Option<Applier>,
    reloader: Reloader,
    watcher: DirWatcher,
    /// Hash of the current config and watched files.
    desired: Option<Hash>,
    /// Hash Prometheus loaded in the last reload, if that reload succeeded.
    loaded: Option<Hash>,
    /// Consecutive failed reloads.
    attempt: u32,
    last_attempt: Option<Instant>,
    /// When the pending reload is due; `None` = nothing pending.
    reload_at: Option<Instant>,
    /// When to probe whether Prometheus accepts connections again (after connect errors).
    probe_at: Option<Instant>,
    /// Something is missing (a directory, the input): poll instead of waiting.
    degraded: bool,
    last_error: Option<String>,
    last_unset: BTreeSet<String>,
    /// Values substituted into the current config: never shown in logs or `/status`.
    secrets: Vec<String>,
}

impl Sidecar {
    async fn run(&mut self, changed: Arc<Notify>, shutdown: &CancellationToken) {
        let mut next_check = Instant::now();
        loop {
            let all_watched = self.watcher.ensure();
            if next_check <= Instant::now() {
                self.check().await;
                let wait = if self.degraded || !all_watched {
                    self.config.retry_interval
                } else {
                    self.config.watch_interval
                };
                next_check = Instant::now() + wait;
            }
            let far = Instant::now() + Duration::from_secs(86_400);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = sleep_until(self.reload_at.unwrap_or(far)), if self.reload_at.is_some() => {
                    self.reload(shutdown).await;
                }
                _ = sleep_until(self.probe_at.unwrap_or(far)), if self.probe_at.is_some() => {
                    self.probe().await;
                }
                _ = changed.notified() => next_check = Instant::now(),
                _ = sleep_until(next_check) => {}
            }
        }
    }

    /// One apply on the blocking pool, then schedule a reload if the hash moved.
    async fn check(&mut self) {
        let mut applier = self.applier.take().expect("applier is home between checks");
        let (applier, result) = tokio::task::spawn_blocking(move || {
            let result = applier.apply();
            (applier, result)
        })
        .await
        .expect("render task does not panic");
        self.applier = Some(applier);
        self.metrics.apply_operations.inc();
        match result {
            Ok(applied) => self.applied(applied),
            Err(error) => self.apply_failed(&error),
        }
    }

    fn applied(&mut self, applied: Applied) {
        self.degraded = false;
        if self.last_error.take().is_some() {
            tracing::info!("config readable again");
        }
        if applied.written {
            tracing::info!(bytes = applied.bytes, hash = %hex(&applied.hash), "config written");
        }
        self.note_unset(applied.unset);
        self.secrets = applied.secrets;
        self.shared.probes.set_ready(true);
        if self.desired != Some(applied.hash) {
            self.desired = Some(applied.hash);
            if self.loaded == Some(applied.hash) {
                self.reload_at = None;
            } else {
                // A newer config supersedes any pending retry.
                self.attempt = 0;
                let earliest = self.last_attempt.map(|t| t + self.config.delay_interval);
                self.reload_at = Some(earliest.map_or(Instant::now(), |t| t.max(Instant::now())));
            }
        }
        self.publish(|doc| doc.last_apply_error = None);
    }

    fn note_unset(&mut self, unset: BTreeSet<String>) {
        self.metrics.env_expansion_errors.set(unset.len() as i64);
        if !unset.is_empty() && unset != self.last_unset {
            let names: Vec<&str> = unset.iter().map(String::as_str).collect();
            tracing::warn!(
                variables = %names.join(","),
                "config references unset environment variables; left as literal text"
            );
        }
        self.last_unset = unset;
    }

    fn apply_failed(&mut self, error: &Error) {
        self.metrics.apply_failed(error.metric_label());
        let missing = matches!(error, Error::Render(RenderError::Missing(_)));
        self.degraded = missing;
        let message = error.to_string();
        if self.last_error.as_deref() != Some(&message) {
            if missing && self.desired.is_none() {
                tracing::info!(error = %message, "waiting for the config file");
            } else {
                tracing::error!(error = %message, kind = error.metric_label(), "config not applied; the last good config stays in place");
            }
        }
        self.last_error = Some(message.clone());
        self.publish(|doc| doc.last_apply_error = Some(message));
    }

    async fn reload(&mut self, shutdown: &CancellationToken) {
        self.reload_at = None;
        self.last_attempt = Some(Instant::now());
        self.metrics.reloads.inc();
        let start = Instant::now();
        let result = tokio::select! {
            result = self.reloader.reload() => result,
            _ = shutdown.cancelled() => return,
        };
        self.metrics
            .reload_duration
            .observe(start.elapsed().as_secs_f64());
        match result {
            Ok(()) => self.reloaded(),
            Err(error) => self.reload_failed(error),
        }
    }

    /// Reloads at once if Prometheus accepts connections again; otherwise probes later.
    async fn probe(&mut self) {
        self.probe_at = None;
        if self.reload_at.is_none() {
            return;
        }
        if self.reloader.reachable().await {
            tracing::info!("Prometheus accepts connections again; reloading now");
            self.reload_at = Some(Instant::now());
        } else {
            self.probe_at = Some(Instant::now() + self.config.retry_interval);
        }
    }

    fn reloaded(&mut self) {
        self.probe_at = None;
        self.loaded = self.desired;
        self.attempt = 0;
        self.metrics.last_reload_successful.set(1);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.metrics
            .last_reload_success_timestamp
            .set(now.as_secs_f64());
        let hash = self.desired.as_ref().map(hex).unwrap_or_default();
        tracing::info!(%hash, "Prometheus reloaded");
        self.publish(|doc| doc.last_reload = Some(ReloadRecord::now(None)));
    }

    fn reload_failed(&mut self, error: ReloadError) {
        self.loaded = None;
        self.attempt += 1;
        let delay = backoff(
            self.attempt,
            self.config.retry_interval,
            self.config.retry_max_interval,
            fastrand::f64(),
        );
        self.reload_at = Some(Instant::now() + delay);
        self.probe_at = match error {
            ReloadError::Connect { .. } if delay > self.config.retry_interval => {
                Some(Instant::now() + self.config.retry_interval)
            }
            _ => None,
        };
        self.metrics.reload_failed(error.metric_label());
        // Prometheus's answer can quote config values: redact what we substituted.
        let message = redact(&error.to_string(), &self.secrets);
        self.log_reload_failure(&error, &message, delay);
        self.publish(|doc| doc.last_reload = Some(ReloadRecord::now(Some(message))));
    }

    /// Logs the first failure of a streak, a changed error, and failures at the backoff cap;
    /// the rest at debug, so a Prometheus that is down for minutes does not flood the log.
    fn log_reload_failure(&self, kind: &ReloadError, error: &str, delay: Duration) {
        let previous = self.shared.snapshot().last_reload.and_then(|r| r.error);
        let changed = previous.as_deref() != Some(error);
        let at_cap = delay * 2 > self.config.retry_max_interval;
        let starting = matches!(kind, ReloadError::Connect { .. })
            && self.metrics.last_reload_success_timestamp.get() == 0.0;
        let retry_in = humantime::format_duration(round_ms(delay)).to_string();
        if starting && self.attempt == 1 {
            tracing::info!(%error, %retry_in, "Prometheus not answering yet; will retry");
        } else if self.attempt == 1 || changed || at_cap {
            tracing::warn!(%error, attempt = self.attempt, %retry_in, "reload failed; will retry");
        } else {
            tracing::debug!(%error, attempt = self.attempt, %retry_in, "reload failed; will retry");
        }
    }

    fn publish(&self, f: impl FnOnce(&mut status::StatusDoc)) {
        self.shared.update(|doc| {
            doc.hash = self.desired.as_ref().map(hex);
            doc.loaded_hash = self.loaded.as_ref().map(hex);
            doc.reload_pending = self.reload_at.is_some();
            f(doc);
        });
    }
}

/// Replaces every occurrence of a secret value (longest first) by `[redacted]`.
fn redact(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_string();
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "[redacted]");
        }
    }
    out
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_longest_first() {
        let secrets = vec!["hunter2-long".to_string(), "hunter2".to_string()];
        assert_eq!(
            redact("bad value \"hunter2-long\" and hunter2", &secrets),
            "bad value \"[redacted]\" and [redacted]"
        );
    }

    #[test]
    fn ordinal_is_the_trailing_digits() {
        assert_eq!(trailing_digits(b"prometheus-k8s-12"), b"12");
        assert_eq!(trailing_digits(b"no-digits"), b"");
        assert_eq!(trailing_digits(b""), b"");
    }
}
