//! API mode: the input is one key of one Secret, read through the Kubernetes API and kept
//! current by a watch on that Secret alone (a field selector on its name), so a change reaches
//! the renderer as soon as the API server has it, not after the kubelet's sync.
//!
//! The watch resumes from the last resourceVersion it saw (events and bookmarks) after the
//! API server closes it or the connection breaks, lists again when that version has expired
//! (`410 Gone`), and backs off (with jitter, from 0.5 s up to 30 s) while the API server cannot
//! be reached or refuses.
//!
//! Whatever the API does, the last good output stays in place: a deleted Secret or a missing
//! key becomes an apply error (reported, nothing written or reloaded), and a failing watch
//! keeps the bytes it last had. `/status` and `reloader_secret_watch_*` say which.

mod api;
mod kubeconfig;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::reload::backoff;
use super::settings::SecretInput;
use super::source::{Latest, Memory};
use super::status::{SecretStatus, Shared};
pub use api::SetupError;
use api::{ApiClient, ApiError, Change};

/// First and longest wait before the watch is tried again after a failure.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// A watch that the API server ends sooner than this is opened again only after
/// [`RETRY_FIRST`], so a server that closes every watch at once is not hammered.
const SHORT_WATCH: Duration = Duration::from_secs(1);

/// Why API mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable client configuration.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// Init mode: the Secret could not be read.
    #[error("reading {name}: {source}")]
    Get {
        /// The Secret and key.
        name: String,
        /// The cause.
        source: ApiError,
    },
    /// Init mode: the Secret is not usable (absent, or without the key).
    #[error("{name}: {reason}")]
    Unusable {
        /// The Secret and key.
        name: String,
        /// Why.
        reason: String,
    },
}

/// The config Secret, reached through the API.
pub struct SecretSource {
    client: ApiClient,
    namespace: String,
    name: String,
    key: String,
    /// `Secret ns/name key k`: how messages name the input.
    label: String,
}

impl SecretSource {
    /// A client from the environment (`KUBECONFIG`, else the in-cluster service account),
    /// for `input`'s Secret (in the configuration's namespace unless one is given).
    pub async fn connect(input: &SecretInput) -> Result<Self, Error> {
        let client = ApiClient::infer()?;
        let namespace = input
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace.clone());
        Ok(Self {
            client,
            label: format!("Secret {namespace}/{} key {}", input.name, input.key),
            namespace,
            name: input.name.clone(),
            key: input.key.clone(),
        })
    }

    /// The input, not read yet: [`SecretSource::read_once`] or [`SecretSource::watch`] fill it.
    pub fn memory(&self) -> Arc<Memory> {
        Arc::new(Memory::new(self.label.clone()))
    }

    /// Init mode: reads the Secret once into `memory`.
    pub async fn read_once(&self, memory: &Memory) -> Result<(), Error> {
        let secret = self
            .client
            .get(&self.namespace, &self.name)
            .await
            .map_err(|source| Error::Get {
                name: self.label.clone(),
                source,
            })?;
        match self.latest(secret.as_ref(), "does not exist") {
            Latest::Unavailable { reason, .. } => Err(Error::Unusable {
                name: self.label.clone(),
                reason,
            }),
            latest => {
                memory.set(latest);
                Ok(())
            }
        }
    }

    /// Watches the Secret until `shutdown`, keeping `memory` current and notifying `changed`
    /// whenever it changes.
    pub async fn watch(
        self,
        memory: Arc<Memory>,
        changed: Arc<Notify>,
        shared: Arc<Shared>,
        shutdown: CancellationToken,
    ) {
        let status = SecretStatus {
            secret: format!("{}/{}", self.namespace, self.name),
            key: self.key.clone(),
            ..SecretStatus::default()
        };
        shared.update(|doc| doc.secret = Some(status));
        let target = Target {
            memory: &memory,
            changed: &changed,
            shared: &shared,
        };
        let mut version = None;
        let mut failures = 0;
        loop {
            let started = tokio::time::Instant::now();
            let step = tokio::select! {
                _ = shutdown.cancelled() => return,
                step = self.step(&mut version, &target) => step,
            };
            match step {
                Ok(Step::Listed) => failures = 0,
                Ok(Step::Watched) => {
                    failures = 0;
                    if started.elapsed() < SHORT_WATCH {
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(RETRY_FIRST) => {}
                        }
                    }
                }
                Err(error) if error.expired() => {
                    tracing::debug!(secret = %self.label, "resourceVersion expired; listing again");
                    version = None;
                }
                Err(error) => {
                    failures += 1;
                    self.failed(&error, failures, &target);
                    let wait = backoff(failures, RETRY_FIRST, RETRY_MAX, fastrand::f64());
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// Lists (with no version to resume from) or watches until the API server closes the
    /// watch, publishing what it sees.
    async fn step(
        &self,
        version: &mut Option<String>,
        target: &Target<'_>,
    ) -> Result<Step, ApiError> {
        let Some(from) = version.clone() else {
            let (secret, listed) = self.client.list(&self.namespace, &self.name).await?;
            *version = Some(listed);
            target.publish(self.seen(secret, "does not exist", target.shared));
            return Ok(Step::Listed);
        };
        let mut watch = self
            .client
            .watch(&self.namespace, &self.name, &from)
            .await?;
        self.working(version.clone(), target.shared);
        while let Some(change) = watch.next().await {
            match change? {
                Change::Applied(secret) => {
                    if let Some(v) = &secret.metadata.resource_version {
                        *version = Some(v.clone());
                    }
                    target.publish(self.seen(Some(*secret), "", target.shared));
                }
                Change::Deleted(v) => {
                    *version = v.or(version.take());
                    target.publish(self.seen(None, "was deleted", target.shared));
                }
                Change::Bookmark(v) => *version = v.or(version.take()),
            }
        }
        Ok(Step::Watched)
    }

    /// Records a list or watch that worked and returns what it means for the input.
    fn seen(&self, secret: Option<Secret>, absent: &str, shared: &Shared) -> Latest {
        let version = secret
            .as_ref()
            .and_then(|s| s.metadata.resource_version.clone());
        self.working(version, shared);
        self.latest(secret.as_ref(), absent)
    }

    fn working(&self, version: Option<String>, shared: &Shared) {
        shared.metrics.secret_watch_up.set(1);
        shared.update(|doc| {
            if let Some(s) = &mut doc.secret {
                if s.watch_error.take().is_some() {
                    tracing::info!(secret = %self.label, "watching the config Secret again");
                }
                if version.is_some() {
                    s.resource_version = version;
                }
            }
        });
    }

    fn failed(&self, error: &ApiError, failures: u32, target: &Target<'_>) {
        let kind = error.kind();
        let message = error.to_string();
        target.shared.metrics.secret_watch_failed(kind);
        let mut changed = false;
        target.shared.update(|doc| {
            if let Some(s) = &mut doc.secret {
                changed = s.watch_error.as_deref() != Some(&message);
                s.watch_error = Some(message.clone());
            }
        });
        if failures == 1 || changed {
            tracing::warn!(secret = %self.label, error = %message, kind, "cannot list or watch the config Secret; the last config read stays in use; retrying with backoff");
        } else {
            tracing::debug!(secret = %self.label, error = %message, kind, failures, "cannot list or watch the config Secret");
        }
        // Only an input never read learns of the error: a later one keeps what it had.
        if target.memory.get() == Latest::Pending {
            target.publish(Latest::Unavailable {
                kind,
                reason: message,
            });
        }
    }

    fn latest(&self, secret: Option<&Secret>, absent: &str) -> Latest {
        let Some(secret) = secret else {
            return Latest::Unavailable {
                kind: "secret_missing",
                reason: format!("the Secret {absent}"),
            };
        };
        match secret.data.as_ref().and_then(|d| d.get(&self.key)) {
            Some(bytes) => Latest::Bytes(bytes.0.as_slice().into()),
            None => Latest::Unavailable {
                kind: "key_missing",
                reason: format!("the Secret has no key {:?}", self.key),
            },
        }
    }
}

/// What one step of the watch loop did.
enum Step {
    /// Listed the Secret.
    Listed,
    /// Watched until the API server closed the watch.
    Watched,
}

/// Where the watch delivers: the input, the sidecar's wake-up, and the shared status.
struct Target<'a> {
    memory: &'a Memory,
    changed: &'a Notify,
    shared: &'a Shared,
}

impl Target<'_> {
    fn publish(&self, latest: Latest) {
        if self.memory.set(latest) {
            self.changed.notify_one();
        }
    }
}
