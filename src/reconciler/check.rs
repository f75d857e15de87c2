//! Check, then render. Every scrape object a Prometheus selects is checked whole before
//! anything is rendered, as prometheus-operator's `resource_selector.go` does: its fields
//! validated, its scrape class found, its credentials and TLS material resolved, the
//! Prometheus's version gates applied. Each comes out either accepted, carrying what
//! rendering needs (so rendering cannot fail per object), or rejected with the reason, which
//! costs only that object.

use std::collections::BTreeMap;

use kube::ResourceExt;
use serde_yaml_ng::Mapping;

use super::crd::{
    HttpClient, PodMonitor, Probe, Prometheus, PrometheusSpec, ScrapeClass, ScrapeConfig,
    ServiceMonitor,
};
use super::credentials::Assets;
use super::http::{Client, TlsAssets};
use super::render::{Inputs, Rejection, supports, supports_patch};
use super::select::{self, key};
use super::validate;

/// The kinds of object that add scrape jobs to a Prometheus's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScrapeKind {
    /// `monitoring.coreos.com/v1` ServiceMonitor.
    ServiceMonitor,
    /// `monitoring.coreos.com/v1` PodMonitor.
    PodMonitor,
    /// `monitoring.coreos.com/v1` Probe.
    Probe,
    /// `monitoring.coreos.com/v1alpha1` ScrapeConfig.
    ScrapeConfig,
}

impl ScrapeKind {
    /// Every kind, in the order their jobs appear in the config.
    pub const ALL: [Self; 4] = [
        Self::ServiceMonitor,
        Self::PodMonitor,
        Self::Probe,
        Self::ScrapeConfig,
    ];

    /// The kind's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ServiceMonitor => "ServiceMonitor",
            Self::PodMonitor => "PodMonitor",
            Self::Probe => "Probe",
            Self::ScrapeConfig => "ScrapeConfig",
        }
    }
}

/// What the selection of one kind came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdicts {
    /// Objects in the config, as `namespace/name`, in job order.
    pub accepted: Vec<String>,
    /// Objects selected but left out, and why.
    pub rejected: Vec<Rejection>,
}

/// An object that passed its checks, with what rendering needs.
#[derive(Debug)]
pub struct Accepted<'a, K> {
    /// The object.
    pub object: &'a K,
    /// Its scrape class (named, or the Prometheus's default).
    pub class: Option<&'a ScrapeClass>,
    /// Each endpoint's client entries, resolved (credentials inline, TLS as asset files); for
    /// a ScrapeConfig, its own then each discovery config's, as `ScrapeConfigSpec::clients`
    /// lists them (a Consul one with its `token`).
    pub clients: Vec<Mapping>,
}

/// The scrape objects of one Prometheus, checked.
#[derive(Debug, Default)]
pub struct Checked<'a> {
    /// Accepted ServiceMonitors, by `namespace/name`.
    pub service_monitors: Vec<Accepted<'a, ServiceMonitor>>,
    /// Accepted PodMonitors, by `namespace/name`.
    pub pod_monitors: Vec<Accepted<'a, PodMonitor>>,
    /// Accepted Probes, by `namespace/name` (one client each: the scrape of the prober).
    pub probes: Vec<Accepted<'a, Probe>>,
    /// Accepted ScrapeConfigs, by `namespace/name`.
    pub scrape_configs: Vec<Accepted<'a, ScrapeConfig>>,
    /// Per kind, what was accepted and rejected.
    pub verdicts: BTreeMap<ScrapeKind, Verdicts>,
    /// TLS material the accepted objects refer to.
    pub tls_assets: TlsAssets,
}

/// Selects and checks the scrape objects of `prometheus`. An error is the Prometheus's own
/// (a malformed selector, a kind that cannot be listed): no object is to blame.
/// `global_interval_ms` is the Prometheus's scrape interval, in milliseconds.
pub fn check<'a>(
    prometheus: &'a Prometheus,
    inputs: &Inputs<'a>,
    global_interval_ms: u64,
) -> Result<Checked<'a>, String> {
    let spec = &prometheus.spec;
    let mut checked = Checked::default();
    let interval_ms = global_interval_ms;
    let deny_files = spec
        .arbitrary_fs_access_through_sms
        .as_ref()
        .is_some_and(|a| a.deny);
    let chosen = select::service_monitors(prometheus, inputs.namespaces, inputs.service_monitors)?;
    let (verdicts, accepted) = each(chosen, &mut checked.tls_assets, |sm| {
        let endpoints = sm.spec.endpoints.iter().enumerate();
        let clients = endpoints.map(|(i, ep)| (format!("spec.endpoints[{i}]"), &ep.client));
        let object = Object {
            validate: validate::service_monitor(sm, interval_ms),
            namespace: sm.namespace().unwrap_or_default(),
            class: sm.spec.scrape.scrape_class.as_deref(),
            deny_files,
            safe_tls: false,
        };
        object.accept(spec, clients, inputs.assets)
    });
    checked.service_monitors = accepted;
    checked
        .verdicts
        .insert(ScrapeKind::ServiceMonitor, verdicts);
    let chosen = select::pod_monitors(prometheus, inputs.namespaces, inputs.pod_monitors)?;
    let (verdicts, accepted) = each(chosen, &mut checked.tls_assets, |pm| {
        let endpoints = pm.spec.pod_metrics_endpoints.iter().enumerate();
        let clients =
            endpoints.map(|(i, ep)| (format!("spec.podMetricsEndpoints[{i}]"), &ep.client));
        let object = Object {
            validate: validate::pod_monitor(pm, interval_ms),
            namespace: pm.namespace().unwrap_or_default(),
            class: pm.spec.scrape.scrape_class.as_deref(),
            // Their clients cannot name files at all (see `validate::pod_monitor`).
            deny_files: false,
            safe_tls: true,
        };
        object.accept(spec, clients, inputs.assets)
    });
    checked.pod_monitors = accepted;
    checked.verdicts.insert(ScrapeKind::PodMonitor, verdicts);
    let chosen = select::probes(prometheus, inputs.namespaces, inputs.probes)?;
    let utf8_names = supports(spec, 3, 0);
    let (verdicts, accepted) = each(chosen, &mut checked.tls_assets, |probe| {
        // The prober is reached through its own proxy: resolved with the client.
        let client = probe_client(probe);
        let object = Object {
            validate: validate::probe(probe, interval_ms, utf8_names),
            namespace: probe.namespace().unwrap_or_default(),
            class: probe.spec.scrape.scrape_class.as_deref(),
            deny_files: false,
            safe_tls: true,
        };
        let clients = std::iter::once(("spec".to_string(), &client));
        object.accept(spec, clients, inputs.assets)
    });
    checked.probes = accepted;
    checked.verdicts.insert(ScrapeKind::Probe, verdicts);
    let chosen = select::scrape_configs(prometheus, inputs.namespaces, inputs.scrape_configs)?;
    let (verdicts, accepted) = each(chosen, &mut checked.tls_assets, |sc| {
        scrape_config(sc, spec, interval_ms, inputs.assets)
    });
    checked.scrape_configs = accepted;
    checked.verdicts.insert(ScrapeKind::ScrapeConfig, verdicts);
    Ok(checked)
}

/// Checks each chosen object of one kind with `accept`: the verdicts, and the accepted
/// objects (their TLS material added to `tls_assets`).
fn each<'a, K: ResourceExt>(
    chosen: Vec<&'a K>,
    tls_assets: &mut TlsAssets,
    accept: impl Fn(&'a K) -> Result<Resolved<'a>, String>,
) -> (Verdicts, Vec<Accepted<'a, K>>) {
    let mut verdicts = Verdicts::default();
    let mut accepted = Vec::new();
    for object in chosen {
        match accept(object) {
            Ok((class, clients, assets)) => {
                verdicts.accepted.push(key(object));
                tls_assets.extend(assets);
                accepted.push(Accepted {
                    object,
                    class,
                    clients,
                });
            }
            Err(reason) => verdicts.rejected.push(Rejection {
                object: key(object),
                reason,
            }),
        }
    }
    (verdicts, accepted)
}

/// One selected object, as its checks see it.
struct Object<'a> {
    /// The outcome of its field checks.
    validate: Result<(), String>,
    /// Its namespace, where its references live.
    namespace: String,
    /// The scrape class it names.
    class: Option<&'a str>,
    /// Whether it may not read files of the Prometheus container.
    deny_files: bool,
    /// Whether its TLS settings are the operator's `SafeTLSConfig`, where one with nothing
    /// set counts as none.
    safe_tls: bool,
}

/// An accepted object's scrape class, client entries and TLS material.
type Resolved<'a> = (Option<&'a ScrapeClass>, Vec<Mapping>, TlsAssets);

impl Object<'_> {
    /// Runs the checks in the operator's order: fields, scrape class, each endpoint's client
    /// (files, then references resolved).
    fn accept<'s, 'c>(
        self,
        spec: &'s PrometheusSpec,
        clients: impl Iterator<Item = (String, &'c HttpClient)>,
        assets: &Assets,
    ) -> Result<Resolved<'s>, String> {
        self.validate?;
        let class = scrape_class(self.class, spec)?;
        let supports = |major, minor| supports(spec, major, minor);
        let resolver = Client {
            namespace: &self.namespace,
            assets,
            supports: &supports,
        };
        let mut tls_assets = TlsAssets::new();
        let mut entries = Vec::new();
        for (path, client) in clients {
            if self.deny_files {
                validate::no_files(client).map_err(|e| format!("{path}: {e}"))?;
            }
            let entry = resolver.entries(client, class, &path, self.safe_tls, &mut tls_assets)?;
            entries.push(entry);
        }
        Ok((class, entries, tls_assets))
    }
}

/// Checks a ScrapeConfig: its fields, its scrape class, its own client (with the class's
/// authorization and TLS, as the operator merges them), then each discovery config's client
/// (without the class: the operator writes them as they are) and Consul token.
fn scrape_config<'a>(
    sc: &ScrapeConfig,
    spec: &'a PrometheusSpec,
    interval_ms: u64,
    assets: &Assets,
) -> Result<Resolved<'a>, String> {
    let supports_version = |major, minor, patch| supports_patch(spec, major, minor, patch);
    validate::scrape_config(sc, interval_ms, &supports_version)?;
    let class = scrape_class(sc.spec.scrape.scrape_class.as_deref(), spec)?;
    let namespace = sc.namespace().unwrap_or_default();
    let supports = |major, minor| supports(spec, major, minor);
    let resolver = Client {
        namespace: &namespace,
        assets,
        supports: &supports,
    };
    let mut tls_assets = TlsAssets::new();
    let mut clients = sc.spec.clients();
    let (path, own) = clients
        .next()
        .expect("a ScrapeConfig's own client comes first");
    let mut entries = vec![resolver.entries(own, class, &path, true, &mut tls_assets)?];
    for (path, client) in clients {
        entries.push(resolver.entries(client, None, &path, false, &mut tls_assets)?);
    }
    let consul_start = entries.len() - sc.spec.consul_sd_configs.len();
    for (i, config) in sc.spec.consul_sd_configs.iter().enumerate() {
        if let Some(token) = &config.token_ref {
            let value = assets
                .secret_key(&namespace, token)
                .map_err(|e| format!("spec.consulSDConfigs[{i}].tokenRef: {e}"))?;
            entries[consul_start + i].insert("token".into(), value.into());
        }
    }
    Ok((class, entries, tls_assets))
}

/// A Probe's client with the prober's proxy, as the operator writes them into its job.
fn probe_client(probe: &Probe) -> HttpClient {
    let proxy = &probe.spec.prober.proxy;
    HttpClient {
        proxy_url: proxy.proxy_url.clone(),
        no_proxy: proxy.no_proxy.clone(),
        proxy_from_environment: proxy.proxy_from_environment,
        proxy_connect_header: proxy.proxy_connect_header.clone(),
        ..probe.spec.client.clone()
    }
}

/// The scrape class an object names (which must exist), or the Prometheus's default.
fn scrape_class<'a>(
    name: Option<&str>,
    spec: &'a PrometheusSpec,
) -> Result<Option<&'a ScrapeClass>, String> {
    match name.filter(|n| !n.is_empty()) {
        Some(name) => spec
            .scrape_classes
            .iter()
            .find(|c| c.name == name)
            .map(Some)
            .ok_or_else(|| {
                format!("spec.scrapeClass: {name:?} is not one of the Prometheus's scrapeClasses")
            }),
        None => Ok(spec.scrape_classes.iter().find(|c| c.default == Some(true))),
    }
}
