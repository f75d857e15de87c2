//! API mode: the input is one key of one Secret, read through the Kubernetes API and kept
//! current by a watch on that Secret alone (a field selector on its name), so a change reaches
//! the renderer as soon as the API server has it, not after the kubelet's sync.
//!
//! kube-runtime's watcher resumes from the last resourceVersion after a disconnect, relists
//! on `410 Gone`, and backs off (with jitter, up to 30 s) while the API server is unreachable.
//! The client re-reads a token file at least once a minute (kube's `TokenFile`, as client-go
//! does), so the kubelet's rotation of the projected service-account token is picked up.
//!
//! Whatever the API does, the last good output stays in place: a deleted Secret or a missing
//! key becomes an apply error (reported, nothing written or reloaded), and a failing watch
//! keeps the bytes it last had. `/status` and `reloader_secret_watch_*` say which.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::source::{Latest, Memory};
use super::status::{SecretStatus, Shared};
use crate::config::SecretInput;

/// Why API mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No client configuration: neither an in-cluster service account nor a kubeconfig.
    #[error(
        "API mode needs a Kubernetes client configuration (the Pod's service account, or KUBECONFIG): {0}"
    )]
    Client(#[source] kube::Error),
    /// Init mode: the Secret could not be read.
    #[error("reading {name}: {source}")]
    Get {
        /// The Secret and key.
        name: String,
        /// The cause.
        source: kube::Error,
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
    api: Api<Secret>,
    name: String,
    key: String,
    /// `Secret ns/name key k`: how messages name the input.
    label: String,
    namespace: String,
}

impl SecretSource {
    /// A client from the environment (in-cluster service account, or `KUBECONFIG`), for
    /// `input`'s Secret (in the client's default namespace unless one is given).
    pub async fn connect(input: &SecretInput) -> Result<Self, Error> {
        let client = Client::try_default().await.map_err(Error::Client)?;
        let namespace = input
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        Ok(Self {
            api: Api::namespaced(client, &namespace),
            label: format!("Secret {namespace}/{} key {}", input.name, input.key),
            name: input.name.clone(),
            key: input.key.clone(),
            namespace,
        })
    }

    /// The input, not read yet: [`SecretSource::read_once`] or [`SecretSource::watch`] fill it.
    pub fn memory(&self) -> Arc<Memory> {
        Arc::new(Memory::new(self.label.clone()))
    }

    /// Init mode: reads the Secret once into `memory`.
    pub async fn read_once(&self, memory: &Memory) -> Result<(), Error> {
        let secret = self
            .api
            .get_opt(&self.name)
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
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        let mut events = watcher::watcher(self.api.clone(), config)
            .default_backoff()
            .boxed();
        // A (re)list delivers the Secret between `Init` and `InitDone`, or nothing if it is absent.
        let mut listed: Option<Secret> = None;
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                event = events.next() => event,
            };
            let latest = match event {
                None => return,
                Some(Ok(Event::Init)) => {
                    listed = None;
                    continue;
                }
                Some(Ok(Event::InitApply(secret))) => {
                    listed = Some(secret);
                    continue;
                }
                Some(Ok(Event::InitDone)) => self.seen(listed.take(), "does not exist", &shared),
                Some(Ok(Event::Apply(secret))) => self.seen(Some(secret), "", &shared),
                Some(Ok(Event::Delete(_))) => self.seen(None, "was deleted", &shared),
                Some(Err(error)) => {
                    let kind = error_kind(&error);
                    shared.metrics.secret_watch_failed(kind);
                    let message = error.to_string();
                    tracing::warn!(secret = %self.label, error = %message, kind, "cannot list or watch the config Secret; the last config read stays in use, retrying with backoff");
                    shared.update(|doc| {
                        if let Some(s) = &mut doc.secret {
                            s.watch_error = Some(message.clone());
                        }
                    });
                    // Only an input never read learns of the error: later ones keep what they had.
                    if memory.get() != Latest::Pending {
                        continue;
                    }
                    Latest::Unavailable {
                        kind,
                        reason: message,
                    }
                }
            };
            if memory.set(latest) {
                changed.notify_one();
            }
        }
    }

    /// Records a list or watch that worked and returns what it means for the input.
    fn seen(&self, secret: Option<Secret>, absent: &str, shared: &Shared) -> Latest {
        shared.metrics.secret_watch_up.set(1);
        let version = secret
            .as_ref()
            .and_then(|s| s.metadata.resource_version.clone());
        shared.update(|doc| {
            if let Some(s) = &mut doc.secret {
                if s.watch_error.take().is_some() {
                    tracing::info!(secret = %self.label, "watching the config Secret again");
                }
                s.resource_version = version;
            }
        });
        self.latest(secret.as_ref(), absent)
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

/// A short label for a failed list or watch.
fn error_kind(error: &watcher::Error) -> &'static str {
    let code = match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => match e {
            kube::Error::Api(status) => Some(status.code),
            _ => None,
        },
        watcher::Error::WatchError(status) => Some(status.code),
        watcher::Error::NoResourceVersion => Some(0),
    };
    match code {
        None => "unreachable",
        Some(401) => "unauthorized",
        Some(403) => "forbidden",
        Some(410) => "expired",
        Some(_) => "api_error",
    }
}
