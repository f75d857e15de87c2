//! The controller: watches Prometheus, ServiceMonitor, PrometheusRule and Namespace objects
//! and keeps every Prometheus's config Secret, rule ConfigMaps and `Reconciled` condition up
//! to date.
//!
//! ServiceMonitors, PrometheusRules and Namespaces are mirrored in reflector stores; any
//! change to them re-reconciles every Prometheus (there are few), a change to a Prometheus
//! reconciles it, and each reconcile asks to run again after the resync interval. The
//! controller starts only once the ServiceMonitor and Namespace stores are synced, so it never
//! writes a config missing ServiceMonitors it has not seen yet; a Prometheus with a
//! `ruleSelector` also waits for the PrometheusRule store, and is refused (keeping its last
//! good state) while PrometheusRules cannot be listed.
//!
//! Secrets and ConfigMaps that ServiceMonitors reference (credentials, TLS material) are read
//! with `get`, one by one, and cached. Metadata-only watches on both kinds (names and
//! versions, never contents, so memory does not grow with the cluster's Secrets) drop a
//! cached object when it changes and re-reconcile, so a rotated credential or certificate
//! reaches the config and the TLS-assets Secret within about a second.
//!
//! PodMonitors, Probes and ScrapeConfigs are mirrored like ServiceMonitors; a Prometheus with
//! a `podMonitorSelector`, `probeSelector` or `scrapeConfigSelector` waits for that kind's
//! first list (a cluster without its CRD has none of them).
//!
//! Each selected scrape object is checked whole before rendering (see [`super::check`]): one
//! that cannot be rendered gets a Warning Event naming the field and the problem, the
//! Prometheus's condition counts accepted and rejected objects per kind, and the rest of the
//! config is written.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ObjectReference, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::bindings;
use super::check::{ScrapeKind, Verdicts};
use super::crd::{PodMonitor, Probe, Prometheus, PrometheusRule, ScrapeConfig, ServiceMonitor};
use super::credentials::{self, Assets, Kind, ObjectRef, Unreadable};
use super::metrics::{PrometheusLabel, ReconcilerMetrics};
use super::objects;
use super::render::{self, Rejection};
use super::rules::{self, RuleFiles};
use super::secret;
use super::select::{NamespaceLabels, key};
use super::settings::ReconcilerConfig;
use super::status::{self, Outcome};
use crate::admin::{Admin, Probes};

/// The condition message of an unmanaged Prometheus.
const UNMANAGED: &str = "no serviceMonitorSelector, podMonitorSelector, probeSelector or \
    scrapeConfigSelector: the config Secret is the user's and is never overwritten";

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A Secret or ConfigMap a ServiceMonitor or the Prometheus references could not be read
    /// for a reason that may pass (not "not found" or "forbidden").
    #[error("cannot read {object}: {source}")]
    Read {
        /// `Kind namespace/name`.
        object: String,
        /// The API's error.
        source: kube::Error,
    },
}

impl Error {
    /// A short, stable label for failure counters.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) | Self::Read { .. } => "kube",
        }
    }
}

/// What the reconcile function shares.
struct Context {
    client: Client,
    config: ReconcilerConfig,
    metrics: ReconcilerMetrics,
    recorder: Recorder,
    service_monitors: Store<ServiceMonitor>,
    /// PodMonitors; not waited for at start (a cluster may lack their CRD): a Prometheus
    /// with a `podMonitorSelector` waits for them instead.
    pod_monitors: Store<PodMonitor>,
    /// Why PodMonitors could not be listed, while they cannot.
    pod_monitors_error: ListError,
    /// Probes, as PodMonitors.
    probes: Store<Probe>,
    /// Why Probes could not be listed, while they cannot.
    probes_error: ListError,
    /// ScrapeConfigs, as PodMonitors.
    scrape_configs: Store<ScrapeConfig>,
    /// Why ScrapeConfigs could not be listed, while they cannot.
    scrape_configs_error: ListError,
    namespaces: Store<Namespace>,
    /// PrometheusRules; not waited for at start (a cluster may lack their CRD): a
    /// Prometheus with a `ruleSelector` waits for them instead.
    prometheus_rules: Store<PrometheusRule>,
    /// Why PrometheusRules could not be listed, while they cannot.
    rules_error: ListError,
    /// Last rejection reason per ServiceMonitor (and per Prometheus), so an Event is
    /// published once per reason rather than at every resync.
    warned: Mutex<HashMap<String, String>>,
    /// Referenced Secrets and ConfigMaps read so far (or why they could not be), dropped
    /// when they change.
    assets: Arc<Mutex<Assets>>,
    /// TLS-assets shards each Prometheus has, as this process last left them.
    tls_shards: Mutex<HashMap<String, usize>>,
    /// Rule ConfigMaps each Prometheus has, as this process last left them.
    rule_config_maps: Mutex<HashMap<String, usize>>,
    /// The `Accepted` bindings written to scrape objects, until the watches bring them.
    bindings: bindings::Written,
    /// The Prometheus objects (the controller's own cache).
    prometheuses: Store<Prometheus>,
}

/// The reconciler's state as the admin endpoints see it.
#[derive(Debug)]
pub struct State {
    metrics: ReconcilerMetrics,
    probes: Probes,
}

impl Admin for State {
    fn probes(&self) -> &Probes {
        &self.probes
    }
    fn metrics(&self) -> String {
        self.metrics.encode()
    }
    fn status(&self) -> String {
        format!("{{\"ready\":{}}}", self.probes.ready())
    }
}

impl State {
    /// Fresh state: alive, not ready.
    pub fn new(metrics: ReconcilerMetrics) -> Self {
        Self {
            metrics,
            probes: Probes::default(),
        }
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(
    client: Client,
    config: ReconcilerConfig,
    state: Arc<State>,
    shutdown: CancellationToken,
) {
    let namespace = config.namespace.clone();
    let (trigger_tx, trigger_rx) = mpsc::channel::<()>(1);
    let metrics = &state.metrics;
    let (service_monitors, _) = mirror(
        api::<ServiceMonitor>(&client, namespace.as_deref()),
        watcher::Config::default(),
        trigger_tx.clone(),
        metrics.clone(),
    );
    let (pod_monitors, pod_monitors_error) = mirror(
        api::<PodMonitor>(&client, namespace.as_deref()),
        watcher::Config::default(),
        trigger_tx.clone(),
        metrics.clone(),
    );
    let (probes, probes_error) = mirror(
        api::<Probe>(&client, namespace.as_deref()),
        watcher::Config::default(),
        trigger_tx.clone(),
        metrics.clone(),
    );
    let (scrape_configs, scrape_configs_error) = mirror(
        api::<ScrapeConfig>(&client, namespace.as_deref()),
        watcher::Config::default(),
        trigger_tx.clone(),
        metrics.clone(),
    );
    let (prometheus_rules, rules_error) = mirror(
        api::<PrometheusRule>(&client, namespace.as_deref()),
        watcher::Config::default(),
        trigger_tx.clone(),
        metrics.clone(),
    );
    let ns_api: Api<Namespace> = Api::all(client.clone());
    let ns_config = match &namespace {
        Some(ns) => watcher::Config::default().fields(&format!("metadata.name={ns}")),
        None => watcher::Config::default(),
    };
    let (namespaces, _) = mirror(ns_api, ns_config, trigger_tx.clone(), metrics.clone());
    let assets = Arc::new(Mutex::new(Assets::default()));
    tokio::spawn(watch_versions(
        api::<PartialObjectMeta<Secret>>(&client, namespace.as_deref()),
        Kind::Secret,
        assets.clone(),
        trigger_tx.clone(),
        metrics.clone(),
    ));
    tokio::spawn(watch_versions(
        api::<PartialObjectMeta<ConfigMap>>(&client, namespace.as_deref()),
        Kind::ConfigMap,
        assets.clone(),
        trigger_tx.clone(),
        metrics.clone(),
    ));
    drop(trigger_tx);
    tracing::info!(
        namespace = namespace.as_deref().unwrap_or("(all)"),
        "waiting for the ServiceMonitor and Namespace caches"
    );
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = async {
            let _ = service_monitors.wait_until_ready().await;
            let _ = namespaces.wait_until_ready().await;
        } => {}
    }
    let controller = Controller::new(
        api::<Prometheus>(&client, namespace.as_deref()),
        watcher::Config::default(),
    );
    let reporter = Reporter {
        controller: secret::MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        config,
        metrics: state.metrics.clone(),
        service_monitors,
        pod_monitors,
        pod_monitors_error,
        probes,
        probes_error,
        scrape_configs,
        scrape_configs_error,
        namespaces,
        prometheus_rules,
        rules_error,
        warned: Mutex::new(HashMap::new()),
        assets,
        tls_shards: Mutex::new(HashMap::new()),
        rule_config_maps: Mutex::new(HashMap::new()),
        bindings: bindings::Written::default(),
        prometheuses: controller.store(),
    });
    state.probes.set_ready(true);
    state.metrics.caches_synced.set(1);
    tracing::info!("caches synced; reconciling");
    let triggers = futures::stream::unfold(trigger_rx, |mut rx| async move {
        rx.recv().await.map(|()| ((), rx))
    });
    let stop = shutdown.clone();
    controller
        .reconcile_all_on(triggers)
        .graceful_shutdown_on(async move { stop.cancelled().await })
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile did not complete");
            }
        })
        .await;
    state.probes.set_ready(false);
    state.probes.set_alive(false);
}

/// Why a kind could not be listed or watched, while it cannot (`None` once it works).
type ListError = Arc<std::sync::Mutex<Option<ListFailure>>>;

/// A failed list or watch.
#[derive(Debug, Clone)]
struct ListFailure {
    /// The error.
    message: String,
    /// The kind's CRD is not installed (the API answered 404 to the list).
    not_installed: bool,
}

/// Mirrors `api` in a store, signalling `trigger` on every change; also returns the last
/// watch error, cleared by the next event. Failures are counted (the store is stale
/// meanwhile), except a kind whose CRD is not installed.
fn mirror<K>(
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
async fn watch_versions<K>(
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
fn resynced(error: &watcher::Error) -> bool {
    matches!(error, watcher::Error::WatchError(status) if status.code == 410)
}

/// Retries from 1 s, doubling up to 10 s: a kind whose CRD is missing is listed again at
/// least every 10 s (one cheap 404), so installing the CRD is noticed soon.
struct ShortBackoff(std::time::Duration);

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

/// The scrape objects of the kinds that are rendered, as known now.
struct ScrapeObjects<'a> {
    service_monitors: &'a [ServiceMonitor],
    pod_monitors: &'a [PodMonitor],
    probes: &'a [Probe],
    scrape_configs: &'a [ScrapeConfig],
}

/// The Secrets and ConfigMaps `prometheus` and the scrape `objects` reference, from the
/// cache, reading the missing ones.
///
/// Only a definite answer is used: an object that does not exist is cached as such (the
/// metadata watch drops the entry when it appears), and one the reconciler may not read is
/// reported for this reconcile only (RBAC can be fixed at any time). Any other failure (the
/// API unreachable, overloaded, timing out) fails the reconcile, so the config Secret keeps
/// its last good state rather than losing the ServiceMonitor's jobs over a passing error.
async fn referenced_assets(
    ctx: &Context,
    prometheus: &Prometheus,
    objects: &ScrapeObjects<'_>,
) -> Result<Assets, Error> {
    let mut wanted: std::collections::BTreeSet<ObjectRef> = objects
        .service_monitors
        .iter()
        .flat_map(credentials::references)
        .collect();
    let pod_monitors = objects.pod_monitors.iter();
    wanted.extend(pod_monitors.flat_map(credentials::pod_monitor_references));
    let probes = objects.probes.iter();
    wanted.extend(probes.flat_map(credentials::probe_references));
    let scrape_configs = objects.scrape_configs.iter();
    wanted.extend(scrape_configs.flat_map(credentials::scrape_config_references));
    wanted.extend(credentials::prometheus_references(prometheus));
    let mut cache = ctx.assets.lock().await;
    let mut forbidden = Vec::new();
    for id in wanted {
        if cache.contains(&id) {
            continue;
        }
        let (kind, ns, name) = &id;
        let read = match kind {
            Kind::Secret => Api::<Secret>::namespaced(ctx.client.clone(), ns)
                .get_opt(name)
                .await
                .map(|found| found.map(|s| cache.insert_secret(&s))),
            Kind::ConfigMap => Api::<ConfigMap>::namespaced(ctx.client.clone(), ns)
                .get_opt(name)
                .await
                .map(|found| found.map(|cm| cache.insert_config_map(&cm))),
        };
        match read {
            Ok(Some(())) => {}
            Ok(None) => cache.unreadable(id, Unreadable::NotFound),
            Err(kube::Error::Api(e)) if e.code == 403 => forbidden.push((id, e.message)),
            Err(source) => {
                return Err(Error::Read {
                    object: format!("{kind} {ns}/{name}"),
                    source,
                });
            }
        }
    }
    let mut assets = cache.clone();
    for (id, message) in forbidden {
        assets.unreadable(id, Unreadable::Forbidden(message));
    }
    Ok(assets)
}

fn namespace_labels(store: &Store<Namespace>) -> NamespaceLabels {
    store
        .state()
        .iter()
        .map(|ns| (ns.name_any(), objects::namespace_labels(ns)))
        .collect()
}

async fn reconcile(prometheus: Arc<Prometheus>, ctx: Arc<Context>) -> Result<Action, Error> {
    use tracing::Instrument;
    let span = tracing::info_span!("reconcile", prometheus = %key(prometheus.as_ref()));
    reconcile_one(prometheus, ctx).instrument(span).await
}

async fn reconcile_one(prometheus: Arc<Prometheus>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    ctx.metrics.reconciliations.inc();
    let name = key(prometheus.as_ref());
    let live = ctx.prometheuses.state().iter().map(|p| key(&**p)).collect();
    ctx.metrics.keep_prometheuses(&name, &live);
    forget_deleted(&ctx, &live).await;
    prune_bindings(&ctx, &live).await;
    let outcome = match outcome(&prometheus, &ctx).await {
        Ok(Some(outcome)) => outcome,
        // Waiting for the first list of a kind it selects.
        Ok(None) => return Ok(Action::requeue(std::time::Duration::from_secs(1))),
        Err(error) => {
            // As the operator: the condition says the reconcile failed, and why, rather than
            // still claiming the last success. Written once per failure spell: each status
            // write wakes the controller, and an error whose text changes at every attempt
            // would otherwise keep it reconciling without pause. Best effort: the API may
            // refuse this write too.
            if !status::failed(&prometheus) {
                let failed = Outcome {
                    ok: false,
                    reason: status::FAILED,
                    message: error.to_string(),
                };
                if let Err(status_error) = status::set(&ctx.client, &prometheus, &failed).await {
                    tracing::debug!(%status_error, "cannot report the failure on the condition");
                }
            }
            return Err(error);
        }
    };
    // Per object, not per name: one deleted and created again gets its own Event.
    let warning_id = format!("{name}#{}", prometheus.uid().unwrap_or_default());
    let label = PrometheusLabel { prometheus: name };
    if outcome.reason == "InvalidConfiguration" {
        ctx.metrics.failed("invalid_prometheus");
        ctx.metrics.config_valid.get_or_create(&label).set(0);
        tracing::debug!(reason = %outcome.message, "config not generated; the Secret keeps the last good config");
        let object = prometheus.object_ref(&());
        warn_once(&ctx, &warning_id, &outcome.message, &object).await;
    } else if outcome.ok {
        ctx.metrics.config_valid.get_or_create(&label).set(1);
        // Valid again: a relapse, even for the same reason, is reported again.
        ctx.warned.lock().await.remove(&warning_id);
    }
    status::set(&ctx.client, &prometheus, &outcome).await?;
    ctx.metrics.duration.observe(start.elapsed().as_secs_f64());
    Ok(Action::requeue(ctx.config.resync_interval))
}

/// Forgets what this process keeps about Prometheuses that no longer exist (the Events it
/// published, their shard counts), so its memory does not grow with deleted objects.
async fn forget_deleted(ctx: &Context, live: &std::collections::HashSet<String>) {
    // A warning's id ends with its Prometheus: `NS/NAME#UID`, or `OBJECT>KIND>NS/NAME`.
    let prometheus_of = |id: &str| {
        let last = id.rsplit('>').next().unwrap_or(id);
        last.split('#').next().unwrap_or(last).to_string()
    };
    ctx.warned
        .lock()
        .await
        .retain(|id, _| live.contains(&prometheus_of(id)));
    ctx.tls_shards.lock().await.retain(|p, _| live.contains(p));
    ctx.rule_config_maps
        .lock()
        .await
        .retain(|p, _| live.contains(p));
}

/// Generates and writes what `prometheus` needs; returns the condition to report, or `None`
/// while a kind it selects has not been listed yet.
async fn outcome(prometheus: &Prometheus, ctx: &Context) -> Result<Option<Outcome>, Error> {
    let namespaces = namespace_labels(&ctx.namespaces);
    let prometheus_rules = match rules_listed(prometheus, ctx) {
        Listed::Yes(rules) => rules,
        Listed::NotYet => return Ok(None),
        Listed::Failed(error) => return Ok(Some(invalid(error))),
    };
    if render::unmanaged(prometheus, &ctx.config.options) {
        // The Pod mounts the TLS assets and rule files whatever the config: the operator
        // writes them (the assets empty).
        if tls_assets(ctx, prometheus, &Default::default()).await? {
            ctx.metrics.secret_writes.inc();
        }
        match rules::render(prometheus, &namespaces, &prometheus_rules) {
            Ok(rules) => write_rules(ctx, prometheus, &rules, &prometheus_rules).await?,
            Err(reason) => return Ok(Some(invalid(reason))),
        }
        // It selects nothing: the bindings it had are removed.
        sync_bindings(ctx, prometheus, &Default::default()).await;
        if secret::create_if_missing(&ctx.client, prometheus).await? {
            ctx.metrics.secret_writes.inc();
            tracing::info!(secret = %secret::name(prometheus), "empty config Secret created (unmanaged Prometheus)");
        }
        return Ok(Some(Outcome {
            ok: true,
            reason: "ConfigurationUnmanaged",
            message: UNMANAGED.into(),
        }));
    }
    // A cluster without the PodMonitor CRD has no PodMonitors (as with Probes and
    // ScrapeConfigs): a kube-prometheus-style Prometheus selecting them all still renders.
    let spec = &prometheus.spec;
    let pod_monitors = match listed(
        spec.pod_monitor_selector.is_some(),
        &ctx.pod_monitors,
        &ctx.pod_monitors_error,
        "podMonitorSelector",
        true,
    ) {
        Listed::Yes(pod_monitors) => pod_monitors,
        Listed::NotYet => return Ok(None),
        Listed::Failed(error) => return Ok(Some(invalid(error))),
    };
    let probes = match listed(
        spec.probe_selector.is_some(),
        &ctx.probes,
        &ctx.probes_error,
        "probeSelector",
        true,
    ) {
        Listed::Yes(probes) => probes,
        Listed::NotYet => return Ok(None),
        Listed::Failed(error) => return Ok(Some(invalid(error))),
    };
    let scrape_configs = match listed(
        spec.scrape_config_selector.is_some(),
        &ctx.scrape_configs,
        &ctx.scrape_configs_error,
        "scrapeConfigSelector",
        true,
    ) {
        Listed::Yes(scrape_configs) => scrape_configs,
        Listed::NotYet => return Ok(None),
        Listed::Failed(error) => return Ok(Some(invalid(error))),
    };
    let service_monitors: Vec<ServiceMonitor> = ctx
        .service_monitors
        .state()
        .iter()
        .map(|sm| (**sm).clone())
        .collect();
    let scrape_objects = ScrapeObjects {
        service_monitors: &service_monitors,
        pod_monitors: &pod_monitors,
        probes: &probes,
        scrape_configs: &scrape_configs,
    };
    let assets = referenced_assets(ctx, prometheus, &scrape_objects).await?;
    let inputs = render::Inputs {
        namespaces: &namespaces,
        service_monitors: &service_monitors,
        pod_monitors: &pod_monitors,
        probes: &probes,
        prometheus_rules: &prometheus_rules,
        scrape_configs: &scrape_configs,
        assets: &assets,
    };
    let rendered = match render::render(prometheus, &inputs, &ctx.config.options) {
        Ok(rendered) => rendered,
        Err(error) => return Ok(Some(invalid(error.reason))),
    };
    // The files first, so the config never refers to a file not yet published.
    if tls_assets(ctx, prometheus, &rendered.tls_assets).await? {
        ctx.metrics.secret_writes.inc();
        tracing::info!(
            files = rendered.tls_assets.len(),
            "TLS-assets Secret written"
        );
    }
    write_rules(ctx, prometheus, &rendered.rules, &prometheus_rules).await?;
    if secret::apply(&ctx.client, prometheus, &rendered.yaml).await? {
        ctx.metrics.secret_writes.inc();
        tracing::info!(
            secret = %secret::name(prometheus),
            jobs = rendered.jobs,
            "config Secret written"
        );
    }
    let label = PrometheusLabel {
        prometheus: key(prometheus),
    };
    let mut counts = Vec::new();
    let none = super::check::Verdicts::default();
    for kind in ScrapeKind::ALL {
        let verdicts = rendered.scrape.get(&kind).unwrap_or(&none);
        let object_ref = |object: &str| -> Option<ObjectReference> {
            let (ns, name) = object.split_once('/')?;
            match kind {
                ScrapeKind::ServiceMonitor => find(&service_monitors, ns, name),
                ScrapeKind::PodMonitor => find(&pod_monitors, ns, name),
                ScrapeKind::Probe => find(&probes, ns, name),
                ScrapeKind::ScrapeConfig => find(&scrape_configs, ns, name),
            }
        };
        warn_rejected(ctx, prometheus, kind.name(), &verdicts.rejected, object_ref).await;
        ctx.metrics.scrape_objects(
            &label,
            kind,
            verdicts.accepted.len(),
            verdicts.rejected.len(),
        );
        let selected = verdicts.accepted.len() + verdicts.rejected.len();
        // ServiceMonitors are always counted (as before); the other kinds when selected.
        if kind == ScrapeKind::ServiceMonitor || selected > 0 {
            counts.push(format!(
                "{selected} {}s selected, {} rejected",
                kind.name(),
                verdicts.rejected.len()
            ));
        }
    }
    sync_bindings(ctx, prometheus, &rendered.scrape).await;
    let rules = &rendered.rules;
    let mut message = counts.join("; ");
    if prometheus.spec.rule_selector.is_some() {
        message.push_str(&format!(
            "; {} PrometheusRules selected, {} rejected",
            rules.selected.len() + rules.rejected.len(),
            rules.rejected.len()
        ));
    }
    Ok(Some(Outcome {
        ok: true,
        reason: "Reconciled",
        message,
    }))
}

/// Brings `prometheus`'s `Accepted` binding on every scrape object in line with what it
/// selected, accepted and rejected (see [`bindings`]).
async fn sync_bindings(
    ctx: &Context,
    prometheus: &Prometheus,
    scrape: &std::collections::BTreeMap<ScrapeKind, Verdicts>,
) {
    let none = Verdicts::default();
    let verdicts = |kind| scrape.get(&kind).unwrap_or(&none);
    let (client, written) = (&ctx.client, &ctx.bindings);
    let mut writes = 0;
    for kind in ScrapeKind::ALL {
        let verdicts = verdicts(kind);
        writes += match kind {
            ScrapeKind::ServiceMonitor => {
                let objects = ctx.service_monitors.state();
                bindings::sync(client, prometheus, &objects, verdicts, written).await
            }
            ScrapeKind::PodMonitor => {
                let objects = ctx.pod_monitors.state();
                bindings::sync(client, prometheus, &objects, verdicts, written).await
            }
            ScrapeKind::Probe => {
                let objects = ctx.probes.state();
                bindings::sync(client, prometheus, &objects, verdicts, written).await
            }
            ScrapeKind::ScrapeConfig => {
                let objects = ctx.scrape_configs.state();
                bindings::sync(client, prometheus, &objects, verdicts, written).await
            }
        };
    }
    if writes > 0 {
        ctx.metrics.binding_writes.inc_by(writes as u64);
        tracing::debug!(objects = writes, "Accepted conditions written");
    }
}

/// Removes the bindings of Prometheuses that no longer exist.
async fn prune_bindings(ctx: &Context, live: &std::collections::HashSet<String>) {
    ctx.bindings.retain_live(live).await;
    let client = &ctx.client;
    let writes = bindings::prune(client, &ctx.service_monitors.state(), live).await
        + bindings::prune(client, &ctx.pod_monitors.state(), live).await
        + bindings::prune(client, &ctx.probes.state(), live).await
        + bindings::prune(client, &ctx.scrape_configs.state(), live).await;
    ctx.metrics.binding_writes.inc_by(writes as u64);
}

/// The reference of the object `ns/name` among `all`, for its Events.
fn find<K: Resource<DynamicType = ()>>(all: &[K], ns: &str, name: &str) -> Option<ObjectReference> {
    all.iter()
        .find(|o| {
            o.meta().namespace.as_deref() == Some(ns) && o.meta().name.as_deref() == Some(name)
        })
        .map(|o| o.object_ref(&()))
}

/// A refused Prometheus: its config and rule files keep their last good state.
fn invalid(message: String) -> Outcome {
    Outcome {
        ok: false,
        reason: "InvalidConfiguration",
        message,
    }
}

/// Whether the objects of a kind a Prometheus may select are known.
enum Listed<K> {
    /// They are (none when it has no selector for the kind).
    Yes(Vec<K>),
    /// Not listed yet.
    NotYet,
    /// They cannot be listed, and why.
    Failed(String),
}

fn rules_listed(prometheus: &Prometheus, ctx: &Context) -> Listed<PrometheusRule> {
    listed(
        prometheus.spec.rule_selector.is_some(),
        &ctx.prometheus_rules,
        &ctx.rules_error,
        "ruleSelector",
        false,
    )
}

/// The objects of a kind a Prometheus selects with `field` (none when it does not): from the
/// store once it has been listed; none when the kind's CRD is not installed and
/// `absent_is_empty`.
fn listed<K: Resource<DynamicType = ()> + Clone>(
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

/// Writes the rule ConfigMaps, reports rejected PrometheusRules and sets their gauges.
async fn write_rules(
    ctx: &Context,
    prometheus: &Prometheus,
    rules: &RuleFiles,
    all: &[PrometheusRule],
) -> kube::Result<()> {
    let name = key(prometheus);
    let known = ctx.rule_config_maps.lock().await.get(&name).copied();
    let (wrote, count) = secret::apply_rule_files(&ctx.client, prometheus, rules, known).await?;
    ctx.rule_config_maps
        .lock()
        .await
        .insert(name.clone(), count);
    if wrote {
        ctx.metrics.secret_writes.inc();
        tracing::info!(
            files = rules.files.len(),
            config_maps = count,
            "rule ConfigMaps written"
        );
    }
    let object_ref = |object: &str| {
        let (ns, name) = object.split_once('/')?;
        find(all, ns, name)
    };
    warn_rejected(
        ctx,
        prometheus,
        "PrometheusRule",
        &rules.rejected,
        object_ref,
    )
    .await;
    let label = PrometheusLabel { prometheus: name };
    ctx.metrics
        .rules_selected
        .get_or_create(&label)
        .set(rules.selected.len() as i64);
    ctx.metrics
        .rules_rejected
        .get_or_create(&label)
        .set(rules.rejected.len() as i64);
    Ok(())
}

/// Writes a Prometheus's TLS-assets Secrets; returns whether it wrote.
async fn tls_assets(
    ctx: &Context,
    prometheus: &Prometheus,
    assets: &super::http::TlsAssets,
) -> kube::Result<bool> {
    let name = key(prometheus);
    let known = ctx.tls_shards.lock().await.get(&name).copied();
    let (wrote, count) = secret::apply_tls_assets(&ctx.client, prometheus, assets, known).await?;
    ctx.tls_shards.lock().await.insert(name, count);
    Ok(wrote)
}

/// Publishes a Warning Event on each rejected object of `kind` (once per reason), found by
/// `object_ref`, and forgets the ones of this kind that are valid again.
async fn warn_rejected(
    ctx: &Context,
    prometheus: &Prometheus,
    kind: &str,
    rejected: &[Rejection],
    object_ref: impl Fn(&str) -> Option<ObjectReference>,
) {
    let suffix = format!(">{kind}>{}", key(prometheus));
    let current: Vec<String> = rejected
        .iter()
        .map(|r| format!("{}{suffix}", r.object))
        .collect();
    // An object that is valid again is forgotten, so a later relapse is reported.
    ctx.warned
        .lock()
        .await
        .retain(|id, _| !id.ends_with(&suffix) || current.contains(id));
    for (r, id) in rejected.iter().zip(&current) {
        let Some(object) = object_ref(&r.object) else {
            continue;
        };
        let note = format!("left out of Prometheus {}: {}", key(prometheus), r.reason);
        warn_once(ctx, id, &note, &object).await;
    }
}

/// Publishes a Warning Event `InvalidConfiguration` on `object`, once per distinct note.
async fn warn_once(ctx: &Context, id: &str, note: &str, object: &ObjectReference) {
    {
        let mut warned = ctx.warned.lock().await;
        if warned.get(id).map(String::as_str) == Some(note) {
            return;
        }
        warned.insert(id.to_string(), note.to_string());
    }
    tracing::warn!(object = %id, %note, "InvalidConfiguration");
    let event = Event {
        type_: EventType::Warning,
        reason: "InvalidConfiguration".into(),
        note: Some(truncate(note, 1000)),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, object).await {
        tracing::warn!(%error, "cannot publish Event");
        ctx.warned.lock().await.remove(id);
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn error_policy(prometheus: Arc<Prometheus>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(error.metric_label());
    tracing::warn!(prometheus = %key(prometheus.as_ref()), %error, "reconcile failed; retrying");
    Action::requeue(std::time::Duration::from_secs(5))
}

#[cfg(test)]
mod tests;
