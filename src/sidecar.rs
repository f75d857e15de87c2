//! The sidecar: watch -> render -> write -> reload, in one task that owns all the state.
//!
//! Each "maybe changed" (a directory event, the periodic re-check, or a poll while something
//! is missing) runs one apply: render and write the config if its input changed, then hash
//! the output together with the watched directories. [`schedule`] decides from that hash
//! and each reload's outcome when to reload: at once for an isolated change, coalesced within
//! `delay-interval`, with backoff after a failure, at once when a refusing Prometheus accepts
//! connections again.
//!
//! A failed render leaves the last good output in place and reloads nothing. A file that was
//! just written in place (not published atomically as the kubelet does) is left to settle
//! for `settle-interval` before it is read, so a two-step write is not reloaded half-written.
//! [`run`]'s `reload_now` (SIGHUP in `main`) re-checks at once and reloads even when nothing
//! changed. While an apply runs, `/healthz` watches it: one that takes longer than
//! `liveness-timeout` (a hung filesystem) turns `/healthz` to 503, so the kubelet restarts us.

pub mod dirs;
pub mod expand;
pub mod input;
pub mod metrics;
pub mod output;
pub mod reload;
pub mod render;
pub mod schedule;
#[cfg(feature = "api")]
pub mod secret;
pub mod settings;
pub mod source;
pub mod status;
pub mod watch;
pub mod webconfig;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use dirs::{Skipped, hash_dirs};
use expand::Unset;
use metrics::Metrics;
use reload::{ReloadError, Reloader};
use render::{Hash, RenderError, Renderer, hex};
use schedule::Schedule;
use settings::Config;
use source::Input;
use status::{ReloadRecord, Shared, SkippedEntry};
use watch::DirWatcher;

/// Why the sidecar could not run (or, in init mode, could not write the config).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config could not be rendered (init mode).
    #[error(transparent)]
    Render(#[from] RenderError),
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
    /// The admin server cannot be protected as its web config asks.
    #[error(transparent)]
    Admin(#[from] webconfig::ProtectionError),
    /// The signal handlers could not be installed (SIGTERM would not stop it cleanly).
    #[error("installing the signal handlers: {0}")]
    Signals(std::io::Error),
    /// API mode could not start, or (init mode) could not read the Secret.
    #[cfg(feature = "api")]
    #[error(transparent)]
    Secret(#[from] secret::Error),
}

/// API mode's Secret, or nothing (file mode, or a build without API mode).
#[cfg(feature = "api")]
type SecretSource = Option<secret::SecretSource>;
#[cfg(not(feature = "api"))]
type SecretSource = Option<std::convert::Infallible>;

/// The renderer's input: the config file, or (API mode) the Secret's key held in memory.
async fn input(config: &Config) -> Result<(Option<Input>, SecretSource), Error> {
    #[cfg(feature = "api")]
    if let Some(wanted) = &config.config_secret {
        let source = secret::SecretSource::connect(wanted).await?;
        let memory = source.memory();
        return Ok((Some(Input::Memory(memory)), Some(source)));
    }
    Ok((config.config_file.clone().map(Input::File), None))
}

/// Runs the sidecar until `shutdown` is cancelled, or, in init mode, writes the config once.
/// Each notification on `reload_now` re-checks at once and reloads Prometheus even if nothing
/// changed (what an operator sending SIGHUP expects).
pub async fn run(
    config: Config,
    metrics: Metrics,
    reload_now: Arc<Notify>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let (input, source) = input(&config).await?;
    let mut applier = Applier::new(&config, input.clone());
    if config.init_mode() {
        #[cfg(feature = "api")]
        if let (Some(source), Some(Input::Memory(memory))) = (&source, &input) {
            source.read_once(memory).await?;
        }
        return init(applier, &shutdown).await;
    }
    let mut reloader = Reloader::new(&config.reload);
    reloader.check()?;
    let shared = Arc::new(Shared::new(metrics.clone(), config.liveness_timeout));
    if let Some(address) = &config.listen_address {
        let protection = config.web.protection()?;
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
            protection,
            shared.clone(),
            shutdown.clone(),
        ));
    }
    applier.adopt_existing_output();
    let changed = Arc::new(Notify::new());
    #[cfg(feature = "api")]
    if let (Some(source), Some(Input::Memory(memory))) = (source, &input) {
        tokio::spawn(source.watch(
            memory.clone(),
            changed.clone(),
            shared.clone(),
            shutdown.clone(),
        ));
    }
    #[cfg(not(feature = "api"))]
    let _ = (source, &input);
    let dirs = watch::dirs_to_watch(config.config_file.as_deref(), &config.watched_dirs);
    let watcher = DirWatcher::new(dirs, changed.clone(), metrics.clone())?;
    let schedule = Schedule::new(
        config.delay_interval,
        config.retry_interval,
        config.retry_max_interval,
    );
    let mut sidecar = Sidecar {
        config,
        shared: shared.clone(),
        metrics,
        applier: Some(applier),
        reloader,
        watcher,
        schedule,
        degraded: true,
        last_error: None,
        last_unset: Unset::default(),
        secrets: Vec::new(),
        skipped: Vec::new(),
        force_reload: false,
        settling_since: None,
    };
    tracing::info!(
        reload = %sidecar.reloader.target(),
        watched_dirs = sidecar.config.watched_dirs.len(),
        "promreload started"
    );
    sidecar.run(changed, reload_now, &shutdown).await;
    shared.probes.set_ready(false);
    shared.probes.set_alive(false);
    tracing::info!("promreload stopped");
    Ok(())
}

/// Init mode: renders once (after letting an in-place write settle) and returns.
async fn init(mut applier: Applier, shutdown: &CancellationToken) -> Result<(), Error> {
    loop {
        let (back, result) = tokio::select! {
            joined = tokio::task::spawn_blocking(move || {
                let result = applier.apply(SystemTime::now(), true);
                (applier, result)
            }) => joined.expect("render task does not panic"),
            _ = shutdown.cancelled() => return Ok(()),
        };
        applier = back;
        match result? {
            Outcome::Applied(applied) => {
                tracing::info!(hash = %hex(&applied.hash), "config written (init mode)");
                return Ok(());
            }
            Outcome::Settling(until) => {
                let wait = until.duration_since(SystemTime::now()).unwrap_or_default();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => return Ok(()),
                }
            }
        }
    }
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
    /// The input file, whose in-place writes are left to settle.
    input: Option<PathBuf>,
    dirs: Vec<PathBuf>,
    settle: Duration,
}

/// What one apply did.
enum Outcome {
    /// Rendered (or found unchanged) and hashed.
    Applied(Applied),
    /// A file was written in place moments ago: nothing was read; try again at this time.
    Settling(SystemTime),
}

/// The result of one successful apply.
struct Applied {
    hash: Hash,
    written: bool,
    bytes: u64,
    unset: Unset,
    /// Values substituted into the config, to redact from error messages.
    secrets: Vec<String>,
    /// Entries of watched directories that could not be hashed.
    skipped: Vec<Skipped>,
}

/// The longest that files written in place may hold an apply back: past it, the config is
/// read even though something is still writing (a file that never stops changing).
const MAX_SETTLE_WAIT: Duration = Duration::from_secs(10);

/// Values shorter than this are not redacted (`0`, `true`: redacting them would garble
/// messages and protects nothing).
const MIN_REDACTED_LEN: usize = 6;

impl Applier {
    fn new(config: &Config, input: Option<Input>) -> Self {
        let env = environment(config.ordinal_from.as_deref());
        let file = match &input {
            Some(Input::File(path)) => Some(path.clone()),
            _ => None,
        };
        let renderer = input.map(|input| {
            Renderer::of(
                input,
                config.output_file.clone(),
                config.max_config_bytes,
                config.strict_env,
                env,
            )
        });
        Self {
            renderer,
            input: file,
            dirs: config.watched_dirs.clone(),
            settle: config.settle_interval,
        }
    }

    /// When a file written in place is still settling, the time to look again.
    fn settling(&self, now: SystemTime) -> Option<SystemTime> {
        let input = self
            .input
            .as_deref()
            .and_then(|p| input::settling_until(p, self.settle, now));
        input.max(dirs::settling(&self.dirs, self.settle, now))
    }

    fn adopt_existing_output(&mut self) {
        if let Some(r) = &mut self.renderer {
            r.adopt_existing_output();
        }
    }

    /// With `settle`, a file written in place moments ago holds the apply back.
    fn apply(&mut self, now: SystemTime, settle: bool) -> Result<Outcome, RenderError> {
        if let Some(until) = self.settling(now).filter(|_| settle) {
            return Ok(Outcome::Settling(until));
        }
        let rendered = self.renderer.as_mut().map(Renderer::apply).transpose()?;
        let dirs = hash_dirs(&self.dirs);
        let mut hasher = Sha256::new();
        if let Some(r) = &rendered {
            hasher.update(b"config\0");
            hasher.update(r.output_hash);
        }
        hasher.update(b"dirs\0");
        hasher.update(dirs.hash);
        let secrets = match (&self.renderer, &rendered) {
            (Some(renderer), Some(r)) => renderer.values(&r.expanded, MIN_REDACTED_LEN),
            _ => Vec::new(),
        };
        Ok(Outcome::Applied(Applied {
            hash: hasher.finalize().into(),
            written: rendered.as_ref().is_some_and(|r| r.written),
            bytes: rendered.as_ref().map_or(0, |r| r.bytes),
            unset: rendered.map(|r| r.unset).unwrap_or_default(),
            secrets,
            skipped: dirs.skipped,
        }))
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
    /// When to reload, from the applied hashes and the reload outcomes.
    schedule: Schedule,
    /// Something is missing (a directory, the input): poll instead of waiting.
    degraded: bool,
    last_error: Option<String>,
    last_unset: Unset,
    /// Values substituted into the current config: never shown in logs or `/status`.
    secrets: Vec<String>,
    /// Entries of watched directories skipped by the last apply.
    skipped: Vec<Skipped>,
    /// Reload after the next apply even if nothing changed (SIGHUP).
    force_reload: bool,
    /// Since when files written in place have held the apply back.
    settling_since: Option<Instant>,
}

impl Sidecar {
    async fn run(
        &mut self,
        changed: Arc<Notify>,
        reload_now: Arc<Notify>,
        shutdown: &CancellationToken,
    ) {
        let mut next_check = Instant::now();
        loop {
            // Stats only: cheap enough to run on every wake-up.
            let watched = {
                let _busy = self.shared.busy();
                self.watcher.ensure()
            };
            if watched.appeared {
                next_check = Instant::now();
            }
            if watched.unwatchable {
                // No events come from it: re-check it in full every retry interval.
                next_check = next_check.min(Instant::now() + self.config.retry_interval);
            }
            if next_check <= Instant::now() {
                next_check = match self.check(shutdown).await {
                    Checked::Shutdown => return,
                    Checked::Settling(until) => at(until),
                    Checked::Done if self.degraded => Instant::now() + self.config.retry_interval,
                    Checked::Done => Instant::now() + self.config.watch_interval,
                };
            }
            // A directory that is missing (or could not be watched) is polled by stat alone.
            let poll = (!watched.all).then(|| Instant::now() + self.config.retry_interval);
            let far = Instant::now() + Duration::from_secs(86_400);
            let wake = poll.map_or(next_check, |p| p.min(next_check));
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = sleep_until(self.schedule.reload_at().unwrap_or(far)), if self.schedule.reload_at().is_some() => {
                    self.reload(shutdown).await;
                }
                _ = sleep_until(self.schedule.probe_at().unwrap_or(far)), if self.schedule.probe_at().is_some() => {
                    self.probe().await;
                }
                _ = reload_now.notified() => {
                    tracing::info!("reload requested (SIGHUP): re-checking and reloading now");
                    self.force_reload = true;
                    next_check = Instant::now();
                }
                _ = changed.notified() => next_check = Instant::now(),
                _ = sleep_until(wake) => {}
            }
        }
    }

    /// One apply on the blocking pool, then schedule a reload if the hash moved. An apply
    /// stuck in the kernel (a hung filesystem) is abandoned on shutdown.
    async fn check(&mut self, shutdown: &CancellationToken) -> Checked {
        let mut applier = self.applier.take().expect("applier is home between checks");
        let busy = self.shared.busy();
        // A file that never stops changing must not hold the config back for ever.
        let settle = self
            .settling_since
            .is_none_or(|since| since.elapsed() <= MAX_SETTLE_WAIT);
        let work = tokio::task::spawn_blocking(move || {
            let result = applier.apply(SystemTime::now(), settle);
            (applier, result)
        });
        let (applier, result) = tokio::select! {
            joined = work => joined.expect("render task does not panic"),
            _ = shutdown.cancelled() => return Checked::Shutdown,
        };
        drop(busy);
        self.applier = Some(applier);
        let force = std::mem::take(&mut self.force_reload);
        match result {
            Ok(Outcome::Settling(until)) => {
                self.force_reload = force;
                self.settling_since.get_or_insert_with(Instant::now);
                tracing::debug!(
                    "a file was written in place moments ago; waiting for it to settle"
                );
                return Checked::Settling(until);
            }
            Ok(Outcome::Applied(applied)) => {
                self.settling_since = None;
                self.metrics.apply_operations.inc();
                self.applied(applied, force);
            }
            Err(error) => {
                self.settling_since = None;
                self.metrics.apply_operations.inc();
                self.apply_failed(&error);
                if force {
                    tracing::warn!(
                        "reload requested, but the config cannot be applied; nothing reloaded"
                    );
                }
            }
        }
        Checked::Done
    }

    fn applied(&mut self, applied: Applied, force: bool) {
        self.degraded = false;
        if self.last_error.take().is_some() {
            tracing::info!("config readable again");
        }
        if applied.written {
            tracing::info!(bytes = applied.bytes, hash = %hex(&applied.hash), "config written");
        }
        self.note_unset(applied.unset);
        self.note_skipped(applied.skipped);
        self.secrets = applied.secrets;
        self.shared.probes.set_ready(true);
        self.schedule.applied(applied.hash, force, Instant::now());
        self.publish(|doc| doc.last_apply_error = None);
    }

    /// Logs each newly skipped entry once (by path and reason), and entries no longer skipped.
    fn note_skipped(&mut self, skipped: Vec<Skipped>) {
        if skipped == self.skipped {
            return;
        }
        for entry in skipped.iter().filter(|e| !self.skipped.contains(e)) {
            tracing::warn!(path = %entry.path.display(), reason = %entry.reason, "watched directory entry skipped: not a readable regular file; the rest of the directory still counts");
        }
        if skipped.is_empty() {
            tracing::info!("no watched directory entries skipped any more");
        }
        self.metrics.watched_files_skipped.set(skipped.len() as i64);
        self.skipped = skipped;
        let shown: Vec<SkippedEntry> = self
            .skipped
            .iter()
            .take(status::MAX_SKIPPED_SHOWN)
            .map(SkippedEntry::from)
            .collect();
        self.shared.update(|doc| doc.skipped = shown);
    }

    fn note_unset(&mut self, unset: Unset) {
        self.metrics.env_expansion_errors.set(unset.count() as i64);
        if !unset.is_empty() && unset != self.last_unset {
            tracing::warn!(
                variables = %unset.summary(),
                "config references unset environment variables; left as literal text"
            );
        }
        self.last_unset = unset;
    }

    fn apply_failed(&mut self, error: &RenderError) {
        self.metrics.apply_failed(error.metric_label());
        let missing = matches!(error, RenderError::Missing(_) | RenderError::Pending(_));
        self.degraded = missing;
        let message = error.to_string();
        // A restarted sidecar whose input is bad (or gone) while the output written before it
        // restarted is still in place: Prometheus runs on that last good config, so the Pod
        // stays ready rather than leaving its Service over a refused update.
        let earlier_output = self.schedule.desired().is_none() && self.earlier_output_in_place();
        if earlier_output && !self.shared.probes.ready() {
            self.shared.probes.set_ready(true);
        }
        if self.last_error.as_deref() != Some(&message) {
            if earlier_output {
                tracing::error!(error = %message, kind = error.metric_label(), "config not applied; the output file keeps the config written before this process started, and nothing is reloaded");
            } else if missing && self.schedule.desired().is_none() {
                tracing::info!(error = %message, "waiting for the config");
            } else if self.schedule.desired().is_none() {
                tracing::error!(error = %message, kind = error.metric_label(), "config not applied; no config written yet");
            } else {
                // Every apply error happens before the output is replaced: this is true.
                tracing::error!(error = %message, kind = error.metric_label(), "config not applied; the output file keeps the last good config and nothing is reloaded");
            }
        }
        self.last_error = Some(message.clone());
        self.publish(|doc| doc.last_apply_error = Some(message));
    }

    /// Whether the output file holds a config from before this process: a non-empty
    /// regular file (only this sidecar, or its init container, writes there, and only
    /// configs that passed the checks).
    fn earlier_output_in_place(&self) -> bool {
        self.config
            .output_file
            .as_deref()
            .and_then(|path| std::fs::symlink_metadata(path).ok())
            .is_some_and(|meta| meta.is_file() && meta.len() > 0)
    }

    async fn reload(&mut self, shutdown: &CancellationToken) {
        self.schedule.reload_started(Instant::now());
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
        if !self.schedule.probe_due() {
            return;
        }
        let reachable = self.reloader.reachable().await;
        if reachable {
            tracing::info!("Prometheus accepts connections again; reloading now");
        }
        self.schedule.probed(reachable, Instant::now());
    }

    fn reloaded(&mut self) {
        // Failures after an earlier success, not a Prometheus that was still starting.
        let failed_attempts = self.schedule.attempt();
        let recovered = failed_attempts > 0
            && self.metrics.last_reload_successful.get() == 0
            && self.metrics.last_reload_success_timestamp.get() > 0.0;
        self.schedule.reload_succeeded();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.metrics
            .last_reload_success_timestamp
            .set(now.as_secs_f64());
        let hash = self
            .schedule
            .desired()
            .as_ref()
            .map(hex)
            .unwrap_or_default();
        if recovered {
            tracing::info!(%hash, failed_attempts, "Prometheus reloaded: reloads work again");
        } else {
            tracing::info!(%hash, "Prometheus reloaded");
        }
        self.metrics.last_reload_successful.set(1);
        self.publish(|doc| doc.last_reload = Some(ReloadRecord::now(None)));
    }

    fn reload_failed(&mut self, error: ReloadError) {
        let refused = matches!(error, ReloadError::Connect { .. });
        let delay = self
            .schedule
            .reload_failed(refused, Instant::now(), fastrand::f64());
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
        if starting && self.schedule.attempt() == 1 {
            tracing::info!(%error, %retry_in, "Prometheus not answering yet; will retry");
        } else if self.schedule.attempt() == 1 || changed || at_cap {
            tracing::warn!(%error, attempt = self.schedule.attempt(), %retry_in, "reload failed; will retry");
        } else {
            tracing::debug!(%error, attempt = self.schedule.attempt(), %retry_in, "reload failed; will retry");
        }
    }

    fn publish(&self, f: impl FnOnce(&mut status::StatusDoc)) {
        self.shared.update(|doc| {
            doc.hash = self.schedule.desired().as_ref().map(hex);
            doc.loaded_hash = self.schedule.loaded().as_ref().map(hex);
            doc.reload_pending = self.schedule.reload_at().is_some();
            f(doc);
        });
    }
}

/// Replaces every occurrence of a secret value, and of any prefix of one at least
/// [`MIN_REDACTED_LEN`] bytes long, by `[redacted]`: Prometheus shortens long values when it
/// quotes them (``cannot unmarshal !!str `hunter2...` ``), so a prefix is as telling.
fn redact(message: &str, secrets: &[String]) -> String {
    let bytes = message.as_bytes();
    let mut out = String::with_capacity(message.len());
    let mut plain = 0;
    let mut i = 0;
    while i < bytes.len() {
        let longest = secrets
            .iter()
            .map(|s| common_prefix(&bytes[i..], s.as_bytes()))
            .max()
            .unwrap_or(0);
        if longest >= MIN_REDACTED_LEN && message.is_char_boundary(i + longest) {
            out.push_str(&message[plain..i]);
            out.push_str("[redacted]");
            i += longest;
            plain = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&message[plain..]);
    out
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// What one check ended in.
enum Checked {
    /// Applied, or failed and reported.
    Done,
    /// Settling: look again at this time.
    Settling(SystemTime),
    /// Shutdown began while the apply ran.
    Shutdown,
}

/// The tokio instant for a wall-clock time (now, if it has passed).
fn at(time: SystemTime) -> Instant {
    Instant::now() + time.duration_since(SystemTime::now()).unwrap_or_default()
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
    fn prefixes_prometheus_quotes_are_redacted() {
        let secrets = vec!["hunter2-is-my-password".to_string()];
        assert_eq!(
            redact("cannot unmarshal !!str `hunter2...` into uint", &secrets),
            "cannot unmarshal !!str `[redacted]...` into uint"
        );
        // Shorter overlaps are ordinary text.
        assert_eq!(redact("hunt and hunte", &secrets), "hunt and hunte");
        assert_eq!(redact("a hunter", &secrets), "a [redacted]");
        assert_eq!(redact("caf\u{e9} ok", &secrets), "caf\u{e9} ok");
    }

    #[test]
    fn ordinal_is_the_trailing_digits() {
        assert_eq!(trailing_digits(b"prometheus-k8s-12"), b"12");
        assert_eq!(trailing_digits(b"no-digits"), b"");
        assert_eq!(trailing_digits(b""), b"");
    }

    /// A reload endpoint in the test's runtime: answers 200 and counts POSTs to `/-/reload`.
    async fn reload_endpoint() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/-/reload", listener.local_addr().unwrap());
        let posts = Arc::new(AtomicUsize::new(0));
        let counted = posts.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                if request.starts_with(b"POST /-/reload ") {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                let _ = conn
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            }
        });
        (url, posts)
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// `run` in this process, on a kubelet-style swap and an in-place change: it writes the
    /// expanded output, reloads once per change and not for an identical input, and returns
    /// when shutdown is cancelled.
    #[tokio::test]
    async fn run_in_process_writes_reloads_once_per_change_and_stops_on_shutdown() {
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("prometheus.yaml");
        let output = dir.path().join("out/prometheus.env.yaml");
        std::fs::create_dir(dir.path().join("out")).unwrap();
        std::fs::write(
            &input,
            "global: {scrape_interval: 1s}\nscrape_configs: []\n",
        )
        .unwrap();
        let (url, posts) = reload_endpoint().await;
        let args = [
            format!("--config-file={}", input.display()),
            format!("--config-envsubst-file={}", output.display()),
            format!("--reload-url={url}"),
            "--listen-address=".into(),
            "--delay-interval=0".into(),
            "--settle-interval=0".into(),
        ];
        let settings::Command::Run { config, .. } =
            settings::parse(args.iter().map(Into::into), &[]).unwrap()
        else {
            panic!("run expected")
        };
        let shutdown = CancellationToken::new();
        let metrics = Metrics::new();
        let task = tokio::spawn(run(
            *config,
            metrics.clone(),
            Arc::new(Notify::new()),
            shutdown.clone(),
        ));
        until("the first reload", || posts.load(Ordering::SeqCst) == 1).await;
        assert!(
            std::fs::read_to_string(&output)
                .unwrap()
                .contains("scrape_interval: 1s")
        );

        let tmp = dir.path().join(".new");
        std::fs::write(&tmp, "global: {scrape_interval: 2s}\nscrape_configs: []\n").unwrap();
        std::fs::rename(&tmp, &input).unwrap();
        until("the change's reload", || posts.load(Ordering::SeqCst) == 2).await;
        assert!(
            std::fs::read_to_string(&output)
                .unwrap()
                .contains("scrape_interval: 2s")
        );

        // The same bytes again: applied, hashed, not reloaded (the schedule is decided in the
        // same step that counts the apply).
        let applies = metrics.apply_operations.get();
        std::fs::write(&tmp, "global: {scrape_interval: 2s}\nscrape_configs: []\n").unwrap();
        std::fs::rename(&tmp, &input).unwrap();
        until("the identical input's apply", || {
            metrics.apply_operations.get() > applies
        })
        .await;
        assert_eq!(posts.load(Ordering::SeqCst), 2);

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("run returns after shutdown")
            .unwrap()
            .unwrap();
    }
}
