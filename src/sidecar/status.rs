//! The sidecar's state as the admin endpoints see it: liveness, readiness and the `/status`
//! document. Written by the sidecar loop, read by the admin server. Holds hashes and error
//! messages only, never config contents or credentials.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::dirs::Skipped;
use super::metrics::Metrics;
use crate::admin::{Admin, Probes};

/// At most this many skipped entries are listed in `/status` (all are counted in metrics).
pub const MAX_SKIPPED_SHOWN: usize = 20;

/// The `/status` document.
#[derive(Debug, Default, Clone, Serialize)]
pub struct StatusDoc {
    /// Hash of the current rendered config and watched files.
    pub hash: Option<String>,
    /// Hash of what the last successful reload loaded.
    pub loaded_hash: Option<String>,
    /// The last reload attempt.
    pub last_reload: Option<ReloadRecord>,
    /// A reload is due (after a failure, or held back by the throttle).
    pub reload_pending: bool,
    /// The last apply error, cleared by the next successful apply.
    pub last_apply_error: Option<String>,
    /// Entries of watched directories that were skipped (the first few), by path and reason.
    pub skipped: Vec<SkippedEntry>,
    /// API mode: the Secret's watch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretStatus>,
}

/// API mode: where the config comes from and how its watch fares.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SecretStatus {
    /// `namespace/name`, and the key.
    pub secret: String,
    /// The key read.
    pub key: String,
    /// The Secret's resourceVersion last seen.
    pub resource_version: Option<String>,
    /// The last list or watch error, cleared once the watch works again.
    pub watch_error: Option<String>,
}

/// One skipped entry in `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedEntry {
    /// The entry's path.
    pub path: String,
    /// Why it was skipped.
    pub reason: String,
}

impl From<&Skipped> for SkippedEntry {
    fn from(s: &Skipped) -> Self {
        Self {
            path: s.path.display().to_string(),
            reason: s.reason.clone(),
        }
    }
}

/// One reload attempt.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadRecord {
    /// When it ended (RFC 3339).
    pub time: String,
    /// `success` or `failure`.
    pub result: &'static str,
    /// Why it failed.
    pub error: Option<String>,
}

impl ReloadRecord {
    /// A record stamped now.
    pub fn now(error: Option<String>) -> Self {
        Self {
            time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            result: if error.is_none() {
                "success"
            } else {
                "failure"
            },
            error,
        }
    }
}

/// State shared between the sidecar loop and the admin server.
#[derive(Debug)]
pub struct Shared {
    /// The metrics, for `/metrics`.
    pub metrics: Metrics,
    /// Liveness and readiness.
    pub probes: Probes,
    doc: Mutex<StatusDoc>,
}

impl Shared {
    /// Fresh state: alive, not ready; `/healthz` fails while one piece of work has been
    /// running for longer than `liveness_timeout`.
    pub fn new(metrics: Metrics, liveness_timeout: Duration) -> Self {
        Self {
            metrics,
            probes: Probes::new(liveness_timeout),
            doc: Mutex::new(StatusDoc::default()),
        }
    }

    /// Marks the work loop busy until the guard is dropped.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.probes.set_busy(true);
        Busy(self.clone())
    }

    /// Updates the `/status` document.
    pub fn update(&self, f: impl FnOnce(&mut StatusDoc)) {
        let mut doc = self.doc.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut doc);
    }

    /// A copy of the `/status` document.
    pub fn snapshot(&self) -> StatusDoc {
        self.doc.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The work loop is busy while this lives (see [`Shared::busy`]).
#[derive(Debug)]
pub struct Busy(Arc<Shared>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.probes.set_busy(false);
    }
}

impl Admin for Shared {
    fn probes(&self) -> &Probes {
        &self.probes
    }

    fn metrics(&self) -> String {
        self.metrics.encode()
    }

    fn status(&self) -> String {
        serde_json::to_string_pretty(&self.snapshot()).unwrap_or_else(|_| "{}".into())
    }
}
