//! Label selectors and which ServiceMonitors and PrometheusRules a Prometheus selects.
//!
//! `serviceMonitorSelector`: unset selects none, `{}` all. `serviceMonitorNamespaceSelector`:
//! unset = the Prometheus's own namespace, `{}` = every namespace. The result is sorted by
//! `namespace/name`, which fixes the order of the scrape jobs.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;

use super::crd::{PodMonitor, Probe, Prometheus, PrometheusRule, ScrapeConfig, ServiceMonitor};

/// Labels of a namespace, by name.
pub type NamespaceLabels = BTreeMap<String, BTreeMap<String, String>>;

/// A malformed requirement of a label selector: its key and operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// `In` or `NotIn` without values.
    #[error("matchExpressions key {key:?}: operator {operator} needs at least one value")]
    NoValues {
        /// The requirement's key.
        key: String,
        /// Its operator.
        operator: String,
    },
    /// `Exists` or `DoesNotExist` with values.
    #[error("matchExpressions key {key:?}: operator {operator} takes no values")]
    TakesNoValues {
        /// The requirement's key.
        key: String,
        /// Its operator.
        operator: String,
    },
    /// Not one of the four operators.
    #[error(
        "matchExpressions key {key:?}: unknown operator {operator:?} (In, NotIn, Exists, DoesNotExist)"
    )]
    UnknownOperator {
        /// The requirement's key.
        key: String,
        /// Its operator.
        operator: String,
    },
}

/// Checks that every requirement of `selector` is well formed.
pub fn validate(selector: &LabelSelector) -> Result<(), SelectorError> {
    for req in selector.match_expressions.iter().flatten() {
        let values = req.values.as_deref().unwrap_or_default();
        let (key, operator) = (req.key.clone(), req.operator.clone());
        match req.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(SelectorError::NoValues { key, operator });
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(SelectorError::TakesNoValues { key, operator });
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            _ => return Err(SelectorError::UnknownOperator { key, operator }),
        }
    }
    Ok(())
}

/// Whether `labels` satisfy `selector` (which must be valid).
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let exact = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    exact
        && selector.match_expressions.iter().flatten().all(|req| {
            let values = req.values.as_deref().unwrap_or_default();
            let value = labels.get(&req.key);
            match req.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

/// The selector in Kubernetes' string form, as Go's `labels.Selector.String()` writes it
/// (what the operator puts in Kubernetes SD `selectors`): requirements sorted by key, joined
/// by commas; `k=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, values sorted. Empty for a
/// selector that selects everything.
pub fn selector_string(selector: &LabelSelector) -> String {
    let mut requirements: Vec<(&str, String)> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), format!("{k}={v}")))
        .collect();
    for req in selector.match_expressions.iter().flatten() {
        let mut values: Vec<&str> = req.values.iter().flatten().map(String::as_str).collect();
        values.sort_unstable();
        values.dedup();
        let k = &req.key;
        let text = match req.operator.as_str() {
            "In" => format!("{k} in ({})", values.join(",")),
            "NotIn" => format!("{k} notin ({})", values.join(",")),
            "Exists" => k.clone(),
            _ => format!("!{k}"),
        };
        requirements.push((k, text));
    }
    requirements.sort_by(|a, b| a.0.cmp(b.0));
    let texts: Vec<String> = requirements.into_iter().map(|(_, t)| t).collect();
    texts.join(",")
}

/// A selector with no requirement: it selects everything.
pub fn is_everything(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty())
}

/// Whether namespace `ns` is in scope of a namespace selector of a Prometheus in namespace
/// `own` (which must be valid): unset = `own` only, `{}` = every namespace.
pub fn in_scope(
    ns_selector: Option<&LabelSelector>,
    own: &str,
    namespaces: &NamespaceLabels,
    ns: &str,
) -> bool {
    match ns_selector {
        None => ns == own,
        Some(s) if is_everything(s) => true,
        Some(s) => namespaces
            .get(ns)
            .map_or_else(|| matches(s, &BTreeMap::new()), |labels| matches(s, labels)),
    }
}

/// The ServiceMonitors `prometheus` selects, sorted by `namespace/name`.
pub fn service_monitors<'a>(
    prometheus: &Prometheus,
    namespaces: &NamespaceLabels,
    all: &'a [ServiceMonitor],
) -> Result<Vec<&'a ServiceMonitor>, String> {
    let spec = &prometheus.spec;
    let selectors = Selectors {
        objects: spec.service_monitor_selector.as_ref(),
        namespaces: spec.service_monitor_namespace_selector.as_ref(),
        field: "serviceMonitor",
    };
    selected(prometheus, &selectors, namespaces, all)
}

/// The PodMonitors `prometheus` selects (`podMonitorSelector` and
/// `podMonitorNamespaceSelector`, with the same meaning as for ServiceMonitors), sorted.
pub fn pod_monitors<'a>(
    prometheus: &Prometheus,
    namespaces: &NamespaceLabels,
    all: &'a [PodMonitor],
) -> Result<Vec<&'a PodMonitor>, String> {
    let spec = &prometheus.spec;
    let selectors = Selectors {
        objects: spec.pod_monitor_selector.as_ref(),
        namespaces: spec.pod_monitor_namespace_selector.as_ref(),
        field: "podMonitor",
    };
    selected(prometheus, &selectors, namespaces, all)
}

/// The Probes `prometheus` selects (`probeSelector` and `probeNamespaceSelector`, with the
/// same meaning as for ServiceMonitors), sorted.
pub fn probes<'a>(
    prometheus: &Prometheus,
    namespaces: &NamespaceLabels,
    all: &'a [Probe],
) -> Result<Vec<&'a Probe>, String> {
    let spec = &prometheus.spec;
    let selectors = Selectors {
        objects: spec.probe_selector.as_ref(),
        namespaces: spec.probe_namespace_selector.as_ref(),
        field: "probe",
    };
    selected(prometheus, &selectors, namespaces, all)
}

/// The ScrapeConfigs `prometheus` selects (`scrapeConfigSelector` and
/// `scrapeConfigNamespaceSelector`, with the same meaning as for ServiceMonitors), sorted.
pub fn scrape_configs<'a>(
    prometheus: &Prometheus,
    namespaces: &NamespaceLabels,
    all: &'a [ScrapeConfig],
) -> Result<Vec<&'a ScrapeConfig>, String> {
    let spec = &prometheus.spec;
    let selectors = Selectors {
        objects: spec.scrape_config_selector.as_ref(),
        namespaces: spec.scrape_config_namespace_selector.as_ref(),
        field: "scrapeConfig",
    };
    selected(prometheus, &selectors, namespaces, all)
}

/// The PrometheusRules `prometheus` selects (`ruleSelector`, `ruleNamespaceSelector`),
/// sorted by `namespace/name`.
pub fn prometheus_rules<'a>(
    prometheus: &Prometheus,
    namespaces: &NamespaceLabels,
    all: &'a [PrometheusRule],
) -> Result<Vec<&'a PrometheusRule>, String> {
    let spec = &prometheus.spec;
    let selectors = Selectors {
        objects: spec.rule_selector.as_ref(),
        namespaces: spec.rule_namespace_selector.as_ref(),
        field: "rule",
    };
    selected(prometheus, &selectors, namespaces, all)
}

/// A Prometheus's pair of selectors for one kind.
struct Selectors<'a> {
    /// Unset selects nothing, `{}` everything.
    objects: Option<&'a LabelSelector>,
    /// Unset = the Prometheus's own namespace, `{}` = every namespace.
    namespaces: Option<&'a LabelSelector>,
    /// The fields' prefix, for errors (`serviceMonitor` for `serviceMonitorSelector`).
    field: &'static str,
}

fn selected<'a, K: ResourceExt>(
    prometheus: &Prometheus,
    selectors: &Selectors,
    namespaces: &NamespaceLabels,
    all: &'a [K],
) -> Result<Vec<&'a K>, String> {
    let Some(selector) = selectors.objects else {
        return Ok(Vec::new());
    };
    let field = selectors.field;
    validate(selector).map_err(|e| format!("{field}Selector: {e}"))?;
    let own = prometheus.namespace().unwrap_or_default();
    let ns_selector = selectors.namespaces;
    if let Some(s) = ns_selector {
        validate(s).map_err(|e| format!("{field}NamespaceSelector: {e}"))?;
    }
    let empty = BTreeMap::new();
    let in_scope = |ns: &str| in_scope(ns_selector, &own, namespaces, ns);
    let mut chosen: Vec<&K> = all
        .iter()
        .filter(|o| in_scope(&o.namespace().unwrap_or_default()))
        .filter(|o| matches(selector, o.meta().labels.as_ref().unwrap_or(&empty)))
        .collect();
    chosen.sort_by_cached_key(|o| key(*o));
    Ok(chosen)
}

/// `namespace/name` of an object.
pub fn key<K: ResourceExt>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_strings_are_gos() {
        let sel: LabelSelector = serde_yaml_ng::from_str(
            "{matchLabels: {team: a, app: web}, matchExpressions: [{key: tier, operator: In, values: [z, b]}, {key: canary, operator: NotIn, values: ['true']}, {key: legacy, operator: DoesNotExist}, {key: monitored, operator: Exists}]}",
        )
        .unwrap();
        assert_eq!(
            selector_string(&sel),
            "app=web,canary notin (true),!legacy,monitored,team=a,tier in (b,z)"
        );
        assert_eq!(selector_string(&LabelSelector::default()), "");
    }
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: Some(values.iter().map(|v| v.to_string()).collect()),
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn match_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("team", "a")])),
            ..Default::default()
        };
        assert!(matches(&sel, &labels(&[("team", "a"), ("x", "y")])));
        assert!(!matches(&sel, &labels(&[("team", "b")])));
        assert!(matches(
            &expr("env", "In", &["prod", "dev"]),
            &labels(&[("env", "dev")])
        ));
        assert!(!matches(&expr("env", "In", &["prod"]), &labels(&[])));
        assert!(matches(&expr("env", "NotIn", &["prod"]), &labels(&[])));
        assert!(matches(
            &expr("env", "Exists", &[]),
            &labels(&[("env", "")])
        ));
        assert!(matches(&expr("env", "DoesNotExist", &[]), &labels(&[])));
        assert!(is_everything(&LabelSelector::default()));
    }

    #[test]
    fn malformed_selectors_are_named() {
        let error = |key: &str, operator: &str| (key.to_string(), operator.to_string());
        let (key, operator) = error("env", "In");
        assert_eq!(
            validate(&expr("env", "In", &[])),
            Err(SelectorError::NoValues { key, operator })
        );
        let (key, operator) = error("env", "Exists");
        assert_eq!(
            validate(&expr("env", "Exists", &["x"])),
            Err(SelectorError::TakesNoValues { key, operator })
        );
        let (key, operator) = error("env", "Equals");
        let unknown = SelectorError::UnknownOperator { key, operator };
        assert_eq!(
            validate(&expr("env", "Equals", &["x"])),
            Err(unknown.clone())
        );
        assert_eq!(
            unknown.to_string(),
            "matchExpressions key \"env\": unknown operator \"Equals\" (In, NotIn, Exists, DoesNotExist)"
        );
    }
}
