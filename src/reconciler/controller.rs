//! The controller: watches Prometheus, scrape (ServiceMonitor, PodMonitor, Probe,
//! ScrapeConfig), PrometheusRule and Namespace objects and keeps every Prometheus's config
//! Secret, TLS assets, rule ConfigMaps and `Reconciled` condition up to date.
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
//! that cannot be rendered gets a Warning Event naming the field and the problem, its own
//! `Accepted` condition says so too (see [`super::bindings`]), the Prometheus's condition
//! counts accepted and rejected objects per kind, and the rest of the config is written.
//!
//! With `RECONCILER_RUN_PROMETHEUS`, a Prometheus whose config was written is also run (see
//! [`super::workload`]): its StatefulSets, Service and web-config Secret are applied after the
//! config, the StatefulSets it owns are watched (a change to one reconciles its Prometheus),
//! and its status carries the Pods' counts and the `Available` condition.
//!
//! The watches and the stores they fill are in `watch`, the Events in `events`; this file is
//! the reconcile.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ObjectReference, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::bindings;
use super::check::{ScrapeKind, Verdicts};
use super::crd::{PodMonitor, Probe, Prometheus, PrometheusRule, ScrapeConfig, ServiceMonitor};
use super::credentials::{self, Assets, Kind, ObjectRef, Unreadable};
use super::metrics::{PrometheusLabel, ReconcilerMetrics};
use super::objects;
use super::render;
use super::rules::{self, RuleFiles};
use super::secret;
use super::select::{NamespaceLabels, key};
use super::settings::ReconcilerConfig;
use super::status::{self, Outcome};
use super::workload;
use crate::admin::{Admin, Probes};
use events::{find, warn_once, warn_rejected};
use watch::{ListError, Listed, listed, mirror, watch_versions};

/// The condition reason of a paused Prometheus.
const PAUSED: &str = "Paused";

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
    let instances = match &config.prometheus_instance_selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    let mut controller =
        Controller::new(api::<Prometheus>(&client, namespace.as_deref()), instances);
    if config.workloads.is_some() {
        // A change to a StatefulSet it runs (its status, an edit, the end of a deletion)
        // reconciles its Prometheus.
        let servers = watcher::Config::default().labels("operator.prometheus.io/mode=server");
        controller = controller.owns(api::<StatefulSet>(&client, namespace.as_deref()), servers);
    }
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
    let handled = |p: &Prometheus| handles(&ctx.config.controller_id, p);
    // What this process keeps (metrics, Events said, bindings written) is kept for the
    // Prometheuses it handles only: one deleted, or given to another controller, is forgotten.
    let live = ctx
        .prometheuses
        .state()
        .iter()
        .filter(|p| handled(p))
        .map(|p| key(&**p))
        .collect();
    forget_deleted(&ctx, &live).await;
    prune_bindings(&ctx, &live).await;
    if !handled(&prometheus) {
        // Another controller's (prometheus-operator's, or a reconciler with another id):
        // nothing of it is touched.
        ctx.metrics.keep_prometheuses(None, &live);
        tracing::debug!("another controller's (operator.prometheus.io/controller-id)");
        return Ok(Action::await_change());
    }
    let start = Instant::now();
    ctx.metrics.reconciliations.inc();
    let name = key(prometheus.as_ref());
    ctx.metrics.keep_prometheuses(Some(&name), &live);
    if prometheus.spec.paused == Some(true) {
        // As the operator: nothing generated is touched. The condition says why.
        let paused = Outcome {
            ok: false,
            reason: PAUSED,
            message: "spec.paused is true: the config Secret, TLS assets and rule ConfigMaps \
                      are left as they are"
                .into(),
        };
        let observed = observed(&ctx, &prometheus).await?;
        status::set(&ctx.client, &prometheus, &paused, observed.as_ref()).await?;
        return Ok(Action::requeue(ctx.config.resync_interval));
    }
    let outcome = match outcome(&prometheus, &ctx).await {
        Ok(Some(outcome)) if outcome.ok => run_pods(&prometheus, &ctx, outcome).await,
        Ok(Some(outcome)) => Ok((outcome, None)),
        // Waiting for the first list of a kind it selects.
        Ok(None) => return Ok(Action::requeue(std::time::Duration::from_secs(1))),
        Err(error) => Err(error),
    };
    let (outcome, seen) = match outcome {
        Ok(outcome) => outcome,
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
                let set = async {
                    let observed = observed(&ctx, &prometheus).await?;
                    status::set(&ctx.client, &prometheus, &failed, observed.as_ref()).await
                };
                if let Err(status_error) = set.await {
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
    // The Pods as the writes left them, or read now when nothing was written.
    let observed = match seen {
        Some(seen) => Some(seen),
        None => observed(&ctx, &prometheus).await?,
    };
    status::set(&ctx.client, &prometheus, &outcome, observed.as_ref()).await?;
    ctx.metrics.duration.observe(start.elapsed().as_secs_f64());
    Ok(Action::requeue(ctx.config.resync_interval))
}

/// The annotation that gives a Prometheus to one controller (prometheus-operator's).
const CONTROLLER_ID: &str = "operator.prometheus.io/controller-id";

/// Whether the reconciler with `controller_id` handles `prometheus`: its
/// `operator.prometheus.io/controller-id` annotation is that id (missing counts as empty), as
/// prometheus-operator's `isManagedByController` decides.
fn handles(controller_id: &str, prometheus: &Prometheus) -> bool {
    let annotation = prometheus.annotations().get(CONTROLLER_ID);
    annotation.map_or("", String::as_str) == controller_id
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

/// With `--run-prometheus`, builds and writes the objects that run a Prometheus whose config
/// was just written (so a new Pod starts on a config that exists). One whose Pods cannot be
/// built as asked is refused, naming the field, and what runs is left as it is. Returns the
/// condition, and the Pods as the writes left them (`None` when nothing was written).
async fn run_pods(
    prometheus: &Prometheus,
    ctx: &Context,
    config: Outcome,
) -> Result<(Outcome, Option<workload::Observed>), Error> {
    let Some(settings) = &ctx.config.workloads else {
        return Ok((config, None));
    };
    let name = key(prometheus);
    let written = workload::Written {
        tls_shards: ctx.tls_shards.lock().await.get(&name).copied().unwrap_or(1),
        rule_config_maps: ctx
            .rule_config_maps
            .lock()
            .await
            .get(&name)
            .copied()
            .unwrap_or(0),
    };
    let built = match workload::build(prometheus, settings, written) {
        Ok(built) => built,
        Err(reason) => return Ok((invalid(reason), None)),
    };
    match workload::apply(&ctx.client, prometheus, &built).await {
        Ok(workload::Applied { writes, observed }) => {
            if writes > 0 {
                ctx.metrics.workload_writes.inc_by(writes as u64);
                tracing::info!(
                    writes,
                    statefulsets = built.statefulsets.len(),
                    "workload written"
                );
            }
            let replicas = prometheus.spec.replicas.unwrap_or(1);
            let outcome = Outcome {
                message: format!(
                    "{}; {} StatefulSets of {replicas} replicas",
                    config.message,
                    built.statefulsets.len()
                ),
                ..config
            };
            Ok((outcome, Some(observed)))
        }
        Err(workload::ApplyError::Refused(reason)) => Ok((invalid(reason), None)),
        Err(workload::ApplyError::Kube(error)) => Err(error.into()),
    }
}

/// The Pods' status to report beside the condition: `None` when the reconciler does not run
/// them.
async fn observed(
    ctx: &Context,
    prometheus: &Prometheus,
) -> kube::Result<Option<workload::Observed>> {
    match ctx.config.workloads {
        Some(_) => workload::observe(&ctx.client, prometheus).await.map(Some),
        None => Ok(None),
    }
}

/// A refused Prometheus: its config and rule files keep their last good state.
fn invalid(message: String) -> Outcome {
    Outcome {
        ok: false,
        reason: "InvalidConfiguration",
        message,
    }
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

fn error_policy(prometheus: Arc<Prometheus>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(error.metric_label());
    tracing::warn!(prometheus = %key(prometheus.as_ref()), %error, "reconcile failed; retrying");
    Action::requeue(std::time::Duration::from_secs(5))
}

mod events;
#[cfg(test)]
mod tests;
mod watch;
