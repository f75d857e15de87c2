//! Namespace, Prometheus, ServiceMonitor, PodMonitor, Probe, ScrapeConfig and PrometheusRule
//! objects read from multi-document YAML (for
//! `promreload-reconciler render`), the same objects the controller gets from the API.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::ResourceExt;
use serde::Deserialize;
use serde_yaml_ng::Value;

use super::crd::{
    PodMonitor, Probe, Prometheus, PrometheusRule, RelabelConfig, ScrapeConfig, ServiceMonitor,
};
use super::credentials::Assets;
use super::select::NamespaceLabels;

/// The label the API server puts on every namespace.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A namespace's labels as selectors see them: its own, plus `kubernetes.io/metadata.name`,
/// which objects read from files may lack.
pub fn namespace_labels(ns: &Namespace) -> BTreeMap<String, String> {
    let mut labels = ns.labels().clone();
    labels.insert(NAMESPACE_NAME_LABEL.into(), ns.name_any());
    labels
}

/// Everything rendering needs.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    /// Namespace labels by name.
    pub namespaces: NamespaceLabels,
    /// Prometheus objects.
    pub prometheuses: Vec<Prometheus>,
    /// ServiceMonitor objects.
    pub service_monitors: Vec<ServiceMonitor>,
    /// PodMonitor objects.
    pub pod_monitors: Vec<PodMonitor>,
    /// Probe objects.
    pub probes: Vec<Probe>,
    /// PrometheusRule objects.
    pub prometheus_rules: Vec<PrometheusRule>,
    /// Secrets and ConfigMaps, for the credentials and TLS material objects reference.
    pub assets: Assets,
    /// ScrapeConfig objects.
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Documents that were skipped, and why.
    pub skipped: Vec<String>,
}

impl Objects {
    /// What rendering reads.
    pub fn inputs(&self) -> super::render::Inputs<'_> {
        super::render::Inputs {
            namespaces: &self.namespaces,
            service_monitors: &self.service_monitors,
            pod_monitors: &self.pod_monitors,
            probes: &self.probes,
            prometheus_rules: &self.prometheus_rules,
            scrape_configs: &self.scrape_configs,
            assets: &self.assets,
        }
    }
}

/// A document that cannot be read: where it is, the kind it claims, and the parser's error.
#[derive(Debug, thiserror::Error)]
#[error("{at}: {}{source}", kind.as_deref().map(|k| format!("{k}: ")).unwrap_or_default())]
pub struct ObjectError {
    /// `FILE: document N`.
    pub at: String,
    /// The kind the document says it is, once known.
    pub kind: Option<String>,
    /// The parser's error.
    pub source: serde_yaml_ng::Error,
}

impl Objects {
    /// Adds every object of a multi-document YAML text; `source` names it in errors.
    pub fn add_yaml(&mut self, text: &str, source: &str) -> Result<(), ObjectError> {
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let at = format!("{source}: document {}", i + 1);
            match Value::deserialize(doc) {
                Ok(value) => self.add_value(value, &at)?,
                Err(source) => {
                    return Err(ObjectError {
                        at,
                        kind: None,
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    fn add_value(&mut self, value: Value, at: &str) -> Result<(), ObjectError> {
        if value.is_null() {
            return Ok(());
        }
        let field = |k: &str| {
            value
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (api_version, kind) = (field("apiVersion"), field("kind"));
        let bad = |source| ObjectError {
            at: at.to_string(),
            kind: Some(kind.clone()),
            source,
        };
        match (api_version.as_str(), kind.as_str()) {
            ("v1", "List") => {
                let items = value.get("items").and_then(Value::as_sequence).cloned();
                for item in items.unwrap_or_default() {
                    self.add_value(item, at)?;
                }
            }
            ("v1", "Secret") => {
                let mut secret: Secret = serde_yaml_ng::from_value(value).map_err(bad)?;
                default_namespace(&mut secret.metadata);
                self.assets.insert_secret(&secret);
            }
            ("v1", "ConfigMap") => {
                let mut cm: ConfigMap = serde_yaml_ng::from_value(value).map_err(bad)?;
                default_namespace(&mut cm.metadata);
                self.assets.insert_config_map(&cm);
            }
            ("v1", "Namespace") => {
                let ns: Namespace = serde_yaml_ng::from_value(value).map_err(bad)?;
                self.namespaces.insert(ns.name_any(), namespace_labels(&ns));
            }
            ("monitoring.coreos.com/v1", "Prometheus") => {
                let mut p: Prometheus = serde_yaml_ng::from_value(value).map_err(bad)?;
                default_namespace(&mut p.metadata);
                self.prometheuses.push(p);
            }
            ("monitoring.coreos.com/v1", "ServiceMonitor") => {
                let mut sm: ServiceMonitor = serde_yaml_ng::from_value(value).map_err(bad)?;
                default_namespace(&mut sm.metadata);
                api_defaults(&mut sm);
                self.service_monitors.push(sm);
            }
            ("monitoring.coreos.com/v1", "PodMonitor") => {
                let mut pm: PodMonitor = serde_yaml_ng::from_value(value).map_err(bad)?;
                default_namespace(&mut pm.metadata);
                for ep in &mut pm.spec.pod_metrics_endpoints {
                    relabel_defaults(ep.relabelings.iter_mut().chain(&mut ep.metric_relabelings));
                }
                self.pod_monitors.push(pm);
            }
            ("monitoring.coreos.com/v1", "Probe") => {
                let mut probe: Probe = serde_yaml_ng::from_value(value).map_err(bad)?;
                default_namespace(&mut probe.metadata);
                let spec = &mut probe.spec;
                spec.prober.path.get_or_insert_with(|| "/probe".into());
                let targets = &mut spec.targets;
                let rules = spec.metric_relabelings.iter_mut().chain(
                    targets
                        .static_config
                        .iter_mut()
                        .flat_map(|s| s.relabeling_configs.iter_mut()),
                );
                relabel_defaults(
                    rules.chain(
                        targets
                            .ingress
                            .iter_mut()
                            .flat_map(|i| i.relabeling_configs.iter_mut()),
                    ),
                );
                self.probes.push(probe);
            }
            ("monitoring.coreos.com/v1", "PrometheusRule") => {
                let mut rule: PrometheusRule = serde_yaml_ng::from_value(value).map_err(bad)?;
                default_namespace(&mut rule.metadata);
                self.prometheus_rules.push(rule);
            }
            ("monitoring.coreos.com/v1alpha1", "ScrapeConfig") => {
                let mut sc: ScrapeConfig = serde_yaml_ng::from_value(value).map_err(bad)?;
                default_namespace(&mut sc.metadata);
                let spec = &mut sc.spec;
                relabel_defaults(
                    spec.relabelings
                        .iter_mut()
                        .chain(&mut spec.metric_relabelings),
                );
                self.scrape_configs.push(sc);
            }
            _ => self
                .skipped
                .push(format!("{at}: {api_version} {kind} is not read")),
        }
        Ok(())
    }
}

/// What the API server fills in from the CRD's defaults (the upstream CRDs' and ours): a
/// relabeling without `action` is `replace`. Objects read from files get the same, so the
/// preview equals what the controller renders.
fn api_defaults(sm: &mut ServiceMonitor) {
    for ep in &mut sm.spec.endpoints {
        relabel_defaults(ep.relabelings.iter_mut().chain(&mut ep.metric_relabelings));
    }
}

/// The API server's default of relabel rules: `action: replace`.
fn relabel_defaults<'a>(rules: impl Iterator<Item = &'a mut RelabelConfig>) {
    for rule in rules {
        rule.action.get_or_insert_with(|| "replace".into());
    }
}

/// Objects without a namespace go to `default`, as with kubectl.
fn default_namespace(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    if meta.namespace.as_deref().is_none_or(str::is_empty) {
        meta.namespace = Some("default".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_known_kinds_and_skips_others() {
        let mut o = Objects::default();
        o.add_yaml(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: team, labels: {a: b}}\n---\n\
             apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {name: k8s}\nspec: {shards: 2, unknownField: 1}\n---\n\
             apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x, namespace: team}\nspec: {endpoints: [{port: web}]}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {ca.crt: x}\n---\n\
             apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\n",
            "t.yaml",
        )
        .unwrap();
        assert_eq!(o.namespaces["team"]["a"], "b");
        assert_eq!(o.namespaces["team"][NAMESPACE_NAME_LABEL], "team");
        assert_eq!(o.prometheuses[0].namespace().as_deref(), Some("default"));
        assert_eq!(o.prometheuses[0].spec.shards, Some(2));
        assert_eq!(
            o.service_monitors[0].spec.endpoints[0].port.as_deref(),
            Some("web")
        );
        let ca = k8s_openapi::api::core::v1::ConfigMapKeySelector {
            name: "c".into(),
            key: "ca.crt".into(),
            optional: None,
        };
        assert_eq!(o.assets.config_map_key("default", &ca), Ok("x"));
        assert_eq!(o.skipped.len(), 1);
    }

    #[test]
    fn errors_name_the_document() {
        let mut o = Objects::default();
        let err = o
            .add_yaml("a: 1\n---\napiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nspec: {shards: many}\n", "f.yaml")
            .unwrap_err();
        assert_eq!(
            (err.at.as_str(), err.kind.as_deref()),
            ("f.yaml: document 2", Some("Prometheus"))
        );
        assert!(
            err.to_string()
                .starts_with("f.yaml: document 2: Prometheus: "),
            "{err}"
        );
    }
}
