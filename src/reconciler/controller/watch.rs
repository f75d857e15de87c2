//! The controller's watches: each kind mirrored in a store (and the last error of its list
//! or watch), the metadata-only watches of Secrets and ConfigMaps that drop changed ones from
//! the asset cache, and what a reconcile reads from them.

use std::sync::Arc;

use futures::StreamExt;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use tokio::sync::{Mutex, mpsc};

use super::super::credentials::{Assets, Kind};
use super::super::metrics::ReconcilerMetrics;

/// Why a kind could not be listed or watched, while it cannot (`None` once it works).
pub(super) type ListError = Arc<std::sync::Mutex<Option<ListFailure>>>;

/// A failed list or watch.
#[derive(Debug, Clone)]
pub(super) struct ListFailure {
    /// The error.
    pub message: String,
    /// The kind's CRD is not installed (the API answered 404 to the list).
    pub not_installed: bool,
}

/// Mirrors `api` in a store, signalling `trigger` on every change; also returns the last
/// watch error, cleared by the next event. Failures are counted (the store is stale
/// meanwhile), except a kind whose CRD is not installed.
pub(super) fn mirror<K>(
    api: Api<K>,
    config: watcher::Config,
    trigger: mpsc::Sender<()>,
    metrics: ReconcilerMetrics,
) -> (Store<K>, ListError)
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    // Retried every 10 s at most: a CRD installed after the reconciler started is noticed
    // soon.
    let stream =
        reflector::reflector(writer, watcher(api, config)).backoff(ShortBackoff::default());
    let error = ListError::default();
    let last_error = error.clone();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            let mut last = last_error.lock().unwrap_or_else(|e| e.into_inner());
            match event {
                // Full: a reconcile of everything is already due.
                Ok(_) => {
                    *last = None;
                    let _ = trigger.try_send(());
                }
                Err(error) => {
                    let kind = K::kind(&());
                    match &error {
                        // The kind's CRD is not installed: expected in some clusters, and
                        // retried with backoff; a Prometheus that needs the kind says so.
                        watcher::Error::InitialListFailed(kube::Error::Api(s)) if s.code == 404 => {
                            tracing::debug!(%error, kind = kind.as_ref(), "not installed; retrying with backoff")
                        }
                        _ if resynced(&error) => {
                            tracing::debug!(%error, kind = kind.as_ref(), "watch expired; listing again")
                        }
                        _ => {
                            metrics.watch_failed(&kind);
                            tracing::warn!(%error, kind = kind.as_ref(), "watch failed; retrying with backoff")
                        }
                    }
                    let first = last.is_none();
                    let not_installed = matches!(
                        &error,
                        watcher::Error::InitialListFailed(kube::Error::Api(s)) if s.code == 404
                    );
                    *last = Some(ListFailure {
                        message: error.to_string(),
                        not_installed,
                    });
                    if first {
                        let _ = trigger.try_send(());
                    }
                }
            }
        }
    });
    (reader, error)
}

/// Watches the metadata only of one kind (Secrets or ConfigMaps): a change to an object that
/// was read for a ServiceMonitor drops it from the cache and re-reconciles everything. While
/// the watch fails, each failed attempt drops the kind from the cache, so reconciles read
/// the objects again instead of trusting what may have changed unseen.
pub(super) async fn watch_versions<K>(
    api: Api<PartialObjectMeta<K>>,
    kind: Kind,
    cache: Arc<Mutex<Assets>>,
    trigger: mpsc::Sender<()>,
    metrics: ReconcilerMetrics,
) where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    PartialObjectMeta<K>: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .touched_objects();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(meta) => {
                let id = (kind, meta.namespace().unwrap_or_default(), meta.name_any());
                if cache.lock().await.forget(&id) {
                    tracing::debug!(object = %format!("{kind} {}/{}", id.1, id.2), "referenced object changed");
                    let _ = trigger.try_send(());
                }
            }
            // The relist that follows touches every object, which drops it from the cache.
            Err(error) if resynced(&error) => {
                tracing::debug!(%error, %kind, "watch expired; listing again")
            }
            Err(error) => {
                metrics.watch_failed(&kind.to_string());
                // Changes go unseen until the watch is back: read them again when needed
                // rather than render from a cache that may be stale.
                cache.lock().await.forget_kind(kind);
                tracing::warn!(%error, %kind, "watch failed; retrying with backoff")
            }
        }
    }
}

/// Whether a watch error is the API server saying the watch expired (410 Gone): part of the
/// protocol, followed by a fresh list, not a failure.
pub(super) fn resynced(error: &watcher::Error) -> bool {
    matches!(error, watcher::Error::WatchError(status) if status.code == 410)
}

/// Retries from 1 s, doubling up to 10 s: a kind whose CRD is missing is listed again at
/// least every 10 s (one cheap 404), so installing the CRD is noticed soon.
pub(super) struct ShortBackoff(std::time::Duration);

impl Default for ShortBackoff {
    fn default() -> Self {
        Self(std::time::Duration::from_secs(1))
    }
}

impl Iterator for ShortBackoff {
    type Item = std::time::Duration;
    fn next(&mut self) -> Option<Self::Item> {
        let now = self.0;
        self.0 = (now * 2).min(std::time::Duration::from_secs(10));
        Some(now)
    }
}

impl kube::runtime::utils::Backoff for ShortBackoff {
    fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Whether the objects of a kind a Prometheus may select are known.
pub(super) enum Listed<K> {
    /// They are (none when it has no selector for the kind).
    Yes(Vec<K>),
    /// Not listed yet.
    NotYet,
    /// They cannot be listed, and why.
    Failed(String),
}

/// The objects of a kind a Prometheus selects with `field` (none when it does not): from the
/// store once it has been listed; none when the kind's CRD is not installed and
/// `absent_is_empty`.
pub(super) fn listed<K: Resource<DynamicType = ()> + Clone>(
    selects: bool,
    store: &Store<K>,
    error: &ListError,
    field: &str,
    absent_is_empty: bool,
) -> Listed<K> {
    use futures::FutureExt;
    if !selects {
        return Listed::Yes(Vec::new());
    }
    if store.wait_until_ready().now_or_never().is_some() {
        return Listed::Yes(store.state().iter().map(|o| (**o).clone()).collect());
    }
    let error = error.lock().unwrap_or_else(|e| e.into_inner());
    match error.as_ref() {
        Some(e) if e.not_installed && absent_is_empty => Listed::Yes(Vec::new()),
        Some(e) => Listed::Failed(format!(
            "{field} is set but {}s cannot be listed ({}); the config and rule files keep their last good state",
            K::kind(&()),
            e.message
        )),
        None => Listed::NotYet,
    }
}
