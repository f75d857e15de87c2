//! When to reload: a pure state machine over the hash of the applied config and the outcome
//! of each reload attempt. The work loop (in [`super`]) feeds it events and sleeps until
//! [`Schedule::reload_at`] or [`Schedule::probe_at`]; it does no I/O and reads no clock, so
//! every rule is tested here under tokio's paused clock.
//!
//! The rules (the README's "Reloads only on change", "Throttles without delaying" and
//! "Retries with backoff"):
//!
//! - a config whose hash differs from what Prometheus last loaded *successfully* is reloaded;
//!   the same hash again (a re-projection, a rollback to what is loaded) is not;
//! - an isolated change is reloaded at once; one within `delay` of the previous attempt waits
//!   for the end of that window, so a burst coalesces into one reload of its final state;
//! - a failed reload is retried with exponential backoff and jitter, from `retry` to
//!   `retry_max`; a newer config replaces the pending one and resets the backoff;
//! - while Prometheus refuses connections and the backoff has grown past `retry`, its port is
//!   probed every `retry`, and a reload is due as soon as it accepts connections again;
//! - a forced check (SIGHUP) reloads at once, changed or not.

use std::time::Duration;

use tokio::time::Instant;

use super::reload::backoff;
use super::render::Hash;

/// The reload schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    delay: Duration,
    retry: Duration,
    retry_max: Duration,
    /// Hash of the current config and watched files.
    desired: Option<Hash>,
    /// Hash Prometheus loaded in the last reload, if that reload succeeded.
    loaded: Option<Hash>,
    /// Consecutive failed reloads.
    attempt: u32,
    last_attempt: Option<Instant>,
    /// When the pending reload is due; `None` = nothing pending.
    reload_at: Option<Instant>,
    /// When to probe whether Prometheus accepts connections again.
    probe_at: Option<Instant>,
}

impl Schedule {
    /// An empty schedule: nothing applied, nothing loaded.
    pub fn new(delay: Duration, retry: Duration, retry_max: Duration) -> Self {
        Self {
            delay,
            retry,
            retry_max,
            desired: None,
            loaded: None,
            attempt: 0,
            last_attempt: None,
            reload_at: None,
            probe_at: None,
        }
    }

    /// An apply produced `hash`; `force` reloads it even if Prometheus has it (SIGHUP).
    pub fn applied(&mut self, hash: Hash, force: bool, now: Instant) {
        if force {
            self.desired = Some(hash);
            self.attempt = 0;
            self.reload_at = Some(now);
        } else if self.desired != Some(hash) {
            self.desired = Some(hash);
            if self.loaded == Some(hash) {
                self.reload_at = None;
            } else {
                // A newer config supersedes any pending retry.
                self.attempt = 0;
                let earliest = self.last_attempt.map(|t| t + self.delay);
                self.reload_at = Some(earliest.map_or(now, |t| t.max(now)));
            }
        }
    }

    /// A reload attempt starts now.
    pub fn reload_started(&mut self, now: Instant) {
        self.reload_at = None;
        self.last_attempt = Some(now);
    }

    /// The attempt succeeded: Prometheus has the desired config.
    pub fn reload_succeeded(&mut self) {
        self.probe_at = None;
        self.loaded = self.desired;
        self.attempt = 0;
    }

    /// The attempt failed (`refused`: the connection was); returns the delay before the retry.
    /// `jitter` in `[0, 1)` spreads retries over the upper half of each backoff step.
    pub fn reload_failed(&mut self, refused: bool, now: Instant, jitter: f64) -> Duration {
        self.loaded = None;
        self.attempt += 1;
        let delay = backoff(self.attempt, self.retry, self.retry_max, jitter);
        self.reload_at = Some(now + delay);
        self.probe_at = (refused && delay > self.retry).then(|| now + self.retry);
        delay
    }

    /// The probe is due: whether it is still worth probing (a reload is pending).
    pub fn probe_due(&mut self) -> bool {
        self.probe_at = None;
        self.reload_at.is_some()
    }

    /// The probe's answer: reachable makes the reload due now, otherwise probe again later.
    pub fn probed(&mut self, reachable: bool, now: Instant) {
        if reachable {
            self.reload_at = Some(now);
        } else {
            self.probe_at = Some(now + self.retry);
        }
    }

    /// When the pending reload is due.
    pub fn reload_at(&self) -> Option<Instant> {
        self.reload_at
    }

    /// When to probe Prometheus's port.
    pub fn probe_at(&self) -> Option<Instant> {
        self.probe_at
    }

    /// The current config's hash.
    pub fn desired(&self) -> Option<Hash> {
        self.desired
    }

    /// The hash Prometheus loaded in the last, successful, reload.
    pub fn loaded(&self) -> Option<Hash> {
        self.loaded
    }

    /// Consecutive failed reloads.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    const DELAY: Duration = Duration::from_secs(1);
    const RETRY: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(60);

    fn hash(n: u8) -> Hash {
        [n; 32]
    }

    fn schedule() -> Schedule {
        Schedule::new(DELAY, RETRY, MAX)
    }

    /// Runs what is due now, as the work loop would: `answer` says how each reload goes
    /// (`Ok` succeeded, `Err(refused)` failed). Returns the hashes reloaded, in order.
    fn run_due(s: &mut Schedule, answer: &mut dyn FnMut() -> Result<(), bool>) -> Vec<Hash> {
        let mut reloaded = Vec::new();
        while s.reload_at().is_some_and(|t| t <= Instant::now()) {
            s.reload_started(Instant::now());
            reloaded.push(s.desired().unwrap());
            match answer() {
                Ok(()) => s.reload_succeeded(),
                Err(refused) => {
                    s.reload_failed(refused, Instant::now(), 0.0);
                }
            }
        }
        reloaded
    }

    fn ok() -> impl FnMut() -> Result<(), bool> {
        || Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn an_isolated_change_reloads_at_once_and_the_same_hash_never_again() {
        let mut s = schedule();
        s.applied(hash(1), false, Instant::now());
        assert_eq!(s.reload_at(), Some(Instant::now()));
        assert_eq!(run_due(&mut s, &mut ok()), vec![hash(1)]);
        assert_eq!(s.loaded(), Some(hash(1)));
        advance(Duration::from_secs(600)).await;
        s.applied(hash(1), false, Instant::now());
        assert_eq!(s.reload_at(), None, "a re-projection of the same config");
        s.applied(hash(2), false, Instant::now());
        assert_eq!(
            s.reload_at(),
            Some(Instant::now()),
            "long after the last: at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_within_the_delay_coalesces_into_one_reload_of_its_final_state() {
        let mut s = schedule();
        let start = Instant::now();
        s.applied(hash(1), false, start);
        assert_eq!(run_due(&mut s, &mut ok()), vec![hash(1)]);
        for n in 2..=5 {
            advance(Duration::from_millis(150)).await;
            s.applied(hash(n), false, Instant::now());
            assert_eq!(
                s.reload_at(),
                Some(start + DELAY),
                "held to the window's end"
            );
            assert!(run_due(&mut s, &mut ok()).is_empty());
        }
        advance(start + DELAY - Instant::now()).await;
        assert_eq!(run_due(&mut s, &mut ok()), vec![hash(5)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_back_to_what_is_loaded_cancels_the_pending_reload() {
        let mut s = schedule();
        s.applied(hash(1), false, Instant::now());
        run_due(&mut s, &mut ok());
        s.applied(hash(2), false, Instant::now());
        assert!(s.reload_at().is_some());
        s.applied(hash(1), false, Instant::now());
        assert_eq!(s.reload_at(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially_up_to_the_cap_then_succeed() {
        let mut s = schedule();
        s.applied(hash(1), false, Instant::now());
        let mut delays = Vec::new();
        for _ in 0..9 {
            s.reload_started(Instant::now());
            delays.push(s.reload_failed(false, Instant::now(), 0.0));
            assert_eq!(s.probe_at(), None, "only refused connections are probed");
            advance(s.reload_at().unwrap() - Instant::now()).await;
        }
        // Jitter 0 gives each step's floor: half its ceiling, at least the retry interval.
        let secs: Vec<f64> = delays.iter().map(Duration::as_secs_f64).collect();
        assert_eq!(secs, [1.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
        assert_eq!(s.attempt(), 9);
        assert_eq!(
            s.loaded(),
            None,
            "a failed reload means nothing is known loaded"
        );
        assert_eq!(run_due(&mut s, &mut ok()), vec![hash(1)]);
        assert_eq!((s.attempt(), s.loaded()), (0, Some(hash(1))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_newer_config_supersedes_a_pending_retry_and_resets_the_backoff() {
        let mut s = schedule();
        s.applied(hash(1), false, Instant::now());
        for _ in 0..5 {
            s.reload_started(Instant::now());
            s.reload_failed(false, Instant::now(), 0.0);
        }
        let retry = s.reload_at().unwrap();
        advance(DELAY).await;
        s.applied(hash(2), false, Instant::now());
        assert_eq!(s.attempt(), 0);
        assert!(
            s.reload_at().unwrap() < retry,
            "not held to the old backoff"
        );
        assert_eq!(s.reload_at(), Some(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_reload_of_the_loaded_config_is_retried_even_if_it_comes_again() {
        // The rollback case: once a reload failed, nothing is known loaded, so the same hash
        // applied again still needs its reload (it is pending).
        let mut s = schedule();
        s.applied(hash(1), false, Instant::now());
        run_due(&mut s, &mut ok());
        s.applied(hash(2), false, Instant::now());
        advance(DELAY).await;
        s.reload_started(Instant::now());
        s.reload_failed(false, Instant::now(), 0.0);
        advance(DELAY).await;
        s.applied(hash(1), false, Instant::now());
        assert_eq!(s.reload_at(), Some(Instant::now()));
        assert_eq!(run_due(&mut s, &mut ok()), vec![hash(1)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_connection_is_probed_every_retry_interval_and_reloads_once_it_answers() {
        let mut s = schedule();
        s.applied(hash(1), false, Instant::now());
        for _ in 0..6 {
            s.reload_started(Instant::now());
            s.reload_failed(true, Instant::now(), 0.0);
        }
        let retry = s.reload_at().unwrap();
        assert_eq!(s.probe_at(), Some(Instant::now() + RETRY));
        for _ in 0..3 {
            advance(RETRY).await;
            assert!(s.probe_due());
            s.probed(false, Instant::now());
            assert_eq!(s.probe_at(), Some(Instant::now() + RETRY));
        }
        advance(RETRY).await;
        assert!(s.probe_due());
        s.probed(true, Instant::now());
        assert!(s.reload_at().unwrap() < retry);
        assert_eq!(run_due(&mut s, &mut ok()), vec![hash(1)]);
        assert_eq!(s.probe_at(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_refusals_are_retried_without_probing() {
        // While the backoff is at the retry interval, the retry itself is as early as a probe.
        let mut s = schedule();
        s.applied(hash(1), false, Instant::now());
        s.reload_started(Instant::now());
        let delay = s.reload_failed(true, Instant::now(), 0.0);
        assert!(delay <= RETRY);
        assert_eq!(s.probe_at(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_with_nothing_pending_stops() {
        let mut s = schedule();
        s.applied(hash(1), false, Instant::now());
        for _ in 0..4 {
            s.reload_started(Instant::now());
            s.reload_failed(true, Instant::now(), 0.0);
        }
        s.applied(hash(2), false, Instant::now());
        advance(DELAY).await;
        assert_eq!(run_due(&mut s, &mut ok()), vec![hash(2)]);
        assert!(!s.probe_due(), "the reload succeeded meanwhile");
    }

    #[tokio::test(start_paused = true)]
    async fn a_forced_check_reloads_at_once_even_unchanged_and_inside_the_window() {
        let mut s = schedule();
        s.applied(hash(1), false, Instant::now());
        run_due(&mut s, &mut ok());
        advance(Duration::from_millis(100)).await;
        s.applied(hash(1), true, Instant::now());
        assert_eq!(s.reload_at(), Some(Instant::now()));
        assert_eq!(run_due(&mut s, &mut ok()), vec![hash(1)]);
    }
}
