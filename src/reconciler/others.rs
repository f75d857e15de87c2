//! PodMonitors, Probes and ScrapeConfigs: scrape kinds this reconciler does not render.
//!
//! A Prometheus may still set their selectors (kube-prometheus sets every selector to `{}`):
//! while they select nothing, the operator adds no job for them either, so the config is the
//! same. Once a selector selects an object of such a kind, the Prometheus is refused, naming
//! the object, rather than given a config without its jobs. The controller lists the three
//! kinds (metadata only); a kind whose CRD is not installed has no objects.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;
use kube::core::{ApiResource, GroupVersionKind};

use super::crd::Prometheus;
use super::select::{self, NamespaceLabels};

/// A scrape kind that is not rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OtherKind {
    /// `monitoring.coreos.com/v1` PodMonitor.
    PodMonitor,
    /// `monitoring.coreos.com/v1` Probe.
    Probe,
    /// `monitoring.coreos.com/v1alpha1` ScrapeConfig.
    ScrapeConfig,
}

impl OtherKind {
    /// Every such kind.
    pub const ALL: [Self; 3] = [Self::PodMonitor, Self::Probe, Self::ScrapeConfig];

    /// The kind's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::PodMonitor => "PodMonitor",
            Self::Probe => "Probe",
            Self::ScrapeConfig => "ScrapeConfig",
        }
    }

    /// The Prometheus fields that select objects of this kind and their namespaces.
    pub fn selector_fields(self) -> (&'static str, &'static str) {
        match self {
            Self::PodMonitor => ("podMonitorSelector", "podMonitorNamespaceSelector"),
            Self::Probe => ("probeSelector", "probeNamespaceSelector"),
            Self::ScrapeConfig => ("scrapeConfigSelector", "scrapeConfigNamespaceSelector"),
        }
    }

    /// The kind's API resource.
    pub fn api_resource(self) -> ApiResource {
        let (version, plural) = match self {
            Self::PodMonitor => ("v1", "podmonitors"),
            Self::Probe => ("v1", "probes"),
            Self::ScrapeConfig => ("v1alpha1", "scrapeconfigs"),
        };
        let gvk = GroupVersionKind::gvk("monitoring.coreos.com", version, self.name());
        ApiResource::from_gvk_with_plural(&gvk, plural)
    }

    /// The kind of a document's `apiVersion` and `kind`, if it is one of these.
    pub fn of(api_version: &str, kind: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| kind == k.name() && api_version == k.api_resource().api_version)
    }
}

/// An object of one of those kinds: what selection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

impl Meta {
    /// The selection metadata of an object.
    pub fn of<K: ResourceExt>(obj: &K) -> Self {
        Self {
            namespace: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
            labels: obj.labels().clone(),
        }
    }
}

/// Objects of one kind by namespace and name.
type ByName = BTreeMap<(String, String), Meta>;

/// The objects of each kind, once listed, or why they could not be.
#[derive(Debug, Default, Clone)]
pub struct Others {
    listed: BTreeMap<OtherKind, Result<ByName, String>>,
}

impl Others {
    /// Every object of `kind` (none when its CRD is not installed).
    pub fn set(&mut self, kind: OtherKind, objects: impl IntoIterator<Item = Meta>) {
        let objects = objects
            .into_iter()
            .map(|m| ((m.namespace.clone(), m.name.clone()), m))
            .collect();
        self.listed.insert(kind, Ok(objects));
    }

    /// One object of `kind` added or changed (the kind counts as listed).
    pub fn upsert(&mut self, kind: OtherKind, meta: Meta) {
        if let Ok(objects) = self
            .listed
            .entry(kind)
            .or_insert_with(|| Ok(BTreeMap::new()))
        {
            objects.insert((meta.namespace.clone(), meta.name.clone()), meta);
        }
    }

    /// One object of `kind` gone.
    pub fn remove(&mut self, kind: OtherKind, namespace: &str, name: &str) {
        if let Some(Ok(objects)) = self.listed.get_mut(&kind) {
            objects.remove(&(namespace.to_string(), name.to_string()));
        }
    }

    /// Objects of `kind` cannot be listed (for example, forbidden).
    pub fn unlistable(&mut self, kind: OtherKind, why: String) {
        self.listed.insert(kind, Err(why));
    }

    /// How many objects of `kind` are known (`None` before its first list, or when it
    /// cannot be listed).
    pub fn count(&self, kind: OtherKind) -> Option<usize> {
        self.listed.get(&kind)?.as_ref().ok().map(BTreeMap::len)
    }

    /// Whether `kind` has been listed (or found not installed, or unlistable).
    pub fn known(&self, kind: OtherKind) -> bool {
        self.listed.contains_key(&kind)
    }

    /// A kind whose selector `prometheus` sets and that is not listed yet: rendering waits
    /// for it, so a config is never written without knowing what it would leave out.
    pub fn waiting_for(&self, prometheus: &Prometheus) -> Option<OtherKind> {
        OtherKind::ALL.into_iter().find(|kind| {
            let (field, _) = kind.selector_fields();
            prometheus
                .spec
                .unrendered
                .get(field)
                .is_some_and(|v| !v.is_null())
                && !self.known(*kind)
        })
    }

    /// Checks that `prometheus` selects no object of these kinds. An error names the field
    /// and the first object selected.
    pub fn check(
        &self,
        prometheus: &Prometheus,
        namespaces: &NamespaceLabels,
    ) -> Result<(), Refused> {
        let own = prometheus.namespace().unwrap_or_default();
        for kind in OtherKind::ALL {
            let (field, ns_field) = kind.selector_fields();
            let Some(selector) = selector_field(prometheus, field)? else {
                continue;
            };
            let ns_selector = selector_field(prometheus, ns_field)?;
            let objects = match self.listed.get(&kind) {
                None => return Err(Refused::NotListed(kind)),
                Some(Err(why)) => {
                    return Err(Refused::Unlistable {
                        field,
                        kind,
                        why: why.clone(),
                    });
                }
                Some(Ok(objects)) => objects,
            };
            let selected: Vec<&Meta> = objects
                .values()
                .filter(|m| select::in_scope(ns_selector.as_ref(), &own, namespaces, &m.namespace))
                .filter(|m| select::matches(&selector, &m.labels))
                .collect();
            if let Some(first) = selected.first() {
                return Err(Refused::Selects {
                    field,
                    kind,
                    object: format!("{}/{}", first.namespace, first.name),
                    more: selected.len() - 1,
                });
            }
        }
        Ok(())
    }
}

/// Why a Prometheus that selects kinds which are not rendered is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The kind's first list has not come yet.
    #[error("{}s are not listed yet", .0.name())]
    NotListed(OtherKind),
    /// The kind cannot be listed (for example, forbidden).
    #[error(
        "spec.{field} is set, and {}s cannot be listed ({why}), so whether it selects any is unknown",
        kind.name()
    )]
    Unlistable {
        /// The selector field.
        field: &'static str,
        /// The kind.
        kind: OtherKind,
        /// Why it cannot be listed.
        why: String,
    },
    /// The selector selects objects of the kind.
    #[error(
        "spec.{field} selects {} {object}{}, which promreload-reconciler does not render; no \
         config is generated rather than one without its jobs",
        kind.name(),
        match more { 0 => String::new(), n => format!(" (and {n} more)") }
    )]
    Selects {
        /// The selector field.
        field: &'static str,
        /// The kind.
        kind: OtherKind,
        /// The first object selected, `namespace/name`.
        object: String,
        /// How many more are selected.
        more: usize,
    },
    /// The field is not a label selector.
    #[error("spec.{field}: not a label selector: {why}")]
    NotASelector {
        /// The selector field.
        field: &'static str,
        /// The decoder's message.
        why: String,
    },
    /// The selector is malformed.
    #[error("spec.{field}: {source}")]
    BadSelector {
        /// The selector field.
        field: &'static str,
        /// What is wrong.
        source: select::SelectorError,
    },
}

/// A selector field of the Prometheus (`None` when unset or `null`), checked.
fn selector_field(
    prometheus: &Prometheus,
    field: &'static str,
) -> Result<Option<LabelSelector>, Refused> {
    let Some(value) = prometheus
        .spec
        .unrendered
        .get(field)
        .filter(|v| !v.is_null())
    else {
        return Ok(None);
    };
    let selector: LabelSelector =
        serde_json::from_value(value.clone()).map_err(|e| Refused::NotASelector {
            field,
            why: e.to_string(),
        })?;
    select::validate(&selector).map_err(|source| Refused::BadSelector { field, source })?;
    Ok(Some(selector))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prometheus(spec: &str) -> Prometheus {
        serde_yaml_ng::from_str(&format!(
            "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: k8s, namespace: mon}}\nspec: {spec}"
        ))
        .unwrap()
    }

    fn meta(namespace: &str, name: &str, labels: &[(&str, &str)]) -> Meta {
        Meta {
            namespace: namespace.into(),
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn selectors_that_select_nothing_are_fine_and_a_selected_object_refuses() {
        let kube_prometheus = prometheus(
            "{serviceMonitorSelector: {}, podMonitorSelector: {}, podMonitorNamespaceSelector: {}, probeSelector: {}, probeNamespaceSelector: {}, scrapeConfigSelector: {}, scrapeConfigNamespaceSelector: {}}",
        );
        let namespaces = NamespaceLabels::new();
        let mut others = Others::default();
        assert_eq!(
            others.check(&kube_prometheus, &namespaces),
            Err(Refused::NotListed(OtherKind::PodMonitor))
        );
        for kind in OtherKind::ALL {
            others.set(kind, []);
        }
        assert_eq!(others.check(&kube_prometheus, &namespaces), Ok(()));
        others.upsert(OtherKind::Probe, meta("team", "blackbox", &[("a", "b")]));
        let err = others.check(&kube_prometheus, &namespaces).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.probeSelector selects Probe team/blackbox, which promreload-reconciler does \
             not render; no config is generated rather than one without its jobs"
        );
        // A selector that does not match it, or a namespace out of scope: fine.
        let narrow = prometheus("{podMonitorSelector: {matchLabels: {a: c}}, probeSelector: {}}");
        assert_eq!(others.check(&narrow, &namespaces), Ok(()));
        others.remove(OtherKind::Probe, "team", "blackbox");
        assert_eq!(others.check(&kube_prometheus, &namespaces), Ok(()));
        others.unlistable(OtherKind::PodMonitor, "forbidden".into());
        assert!(
            others
                .check(&kube_prometheus, &namespaces)
                .unwrap_err()
                .to_string()
                .contains("cannot be listed (forbidden)")
        );
        let bad = prometheus("{podMonitorSelector: {matchExpressions: [{key: a, operator: Is}]}}");
        assert!(matches!(
            others.check(&bad, &namespaces),
            Err(Refused::BadSelector {
                field: "podMonitorSelector",
                source: select::SelectorError::UnknownOperator { .. },
            })
        ));
    }
}
