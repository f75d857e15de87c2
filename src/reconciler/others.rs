//! ScrapeConfigs: a scrape kind this reconciler does not render yet.
//!
//! A Prometheus may still set their selectors (kube-prometheus sets every selector to `{}`):
//! while they select nothing, the operator adds no job for them either, so the config is the
//! same. Each object such a selector selects is rejected alone, named in a Warning Event and
//! in the Prometheus's condition; the rest of the config is written. The controller lists the
//! kind (metadata only); a kind whose CRD is not installed has no objects.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;
use kube::core::{ApiResource, GroupVersionKind};

use super::crd::Prometheus;
use super::select::{self, NamespaceLabels};

/// A scrape kind that is not rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OtherKind {
    /// `monitoring.coreos.com/v1alpha1` ScrapeConfig.
    ScrapeConfig,
}

impl OtherKind {
    /// Every such kind.
    pub const ALL: [Self; 1] = [Self::ScrapeConfig];

    /// The kind's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ScrapeConfig => "ScrapeConfig",
        }
    }

    /// The Prometheus fields that select objects of this kind and their namespaces.
    pub fn selector_fields(self) -> (&'static str, &'static str) {
        match self {
            Self::ScrapeConfig => ("scrapeConfigSelector", "scrapeConfigNamespaceSelector"),
        }
    }

    /// The kind's API resource.
    pub fn api_resource(self) -> ApiResource {
        let (version, plural) = match self {
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
    /// Its UID (for the Events that name it).
    pub uid: Option<String>,
}

impl Meta {
    /// The selection metadata of an object.
    pub fn of<K: ResourceExt>(obj: &K) -> Self {
        Self {
            namespace: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
            labels: obj.labels().clone(),
            uid: obj.uid(),
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

    /// The objects of these kinds `prometheus` selects, as `namespace/name`. An error is
    /// the Prometheus's: a malformed selector, or a selected kind not known.
    pub fn selected(
        &self,
        prometheus: &Prometheus,
        namespaces: &NamespaceLabels,
    ) -> Result<Vec<(OtherKind, String)>, Refused> {
        let own = prometheus.namespace().unwrap_or_default();
        let mut out = Vec::new();
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
            out.extend(
                objects
                    .values()
                    .filter(|m| {
                        select::in_scope(ns_selector.as_ref(), &own, namespaces, &m.namespace)
                    })
                    .filter(|m| select::matches(&selector, &m.labels))
                    .map(|m| (kind, format!("{}/{}", m.namespace, m.name))),
            );
        }
        Ok(out)
    }

    /// The metadata of one object.
    pub fn get(&self, kind: OtherKind, namespace: &str, name: &str) -> Option<&Meta> {
        let objects = self.listed.get(&kind)?.as_ref().ok()?;
        objects.get(&(namespace.to_string(), name.to_string()))
    }
}

/// Why what a Prometheus selects of these kinds is unknown.
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
            uid: None,
        }
    }

    #[test]
    fn selected_objects_are_listed_one_by_one_and_unknown_kinds_refuse() {
        let kube_prometheus = prometheus(
            "{serviceMonitorSelector: {}, scrapeConfigSelector: {}, scrapeConfigNamespaceSelector: {}}",
        );
        let namespaces = NamespaceLabels::new();
        let mut others = Others::default();
        assert_eq!(
            others.selected(&kube_prometheus, &namespaces),
            Err(Refused::NotListed(OtherKind::ScrapeConfig))
        );
        for kind in OtherKind::ALL {
            others.set(kind, []);
        }
        assert_eq!(others.selected(&kube_prometheus, &namespaces), Ok(vec![]));
        others.upsert(
            OtherKind::ScrapeConfig,
            meta("team", "external", &[("a", "b")]),
        );
        others.upsert(OtherKind::ScrapeConfig, meta("team", "other", &[]));
        assert_eq!(
            others.selected(&kube_prometheus, &namespaces),
            Ok(vec![
                (OtherKind::ScrapeConfig, "team/external".to_string()),
                (OtherKind::ScrapeConfig, "team/other".to_string()),
            ])
        );
        assert!(
            others
                .get(OtherKind::ScrapeConfig, "team", "external")
                .is_some()
        );
        // A selector that does not match, or a namespace out of scope: nothing.
        let narrow = prometheus("{scrapeConfigSelector: {matchLabels: {a: c}}}");
        assert_eq!(others.selected(&narrow, &namespaces), Ok(vec![]));
        let own = prometheus("{scrapeConfigSelector: {}}");
        assert_eq!(others.selected(&own, &namespaces), Ok(vec![]));
        others.remove(OtherKind::ScrapeConfig, "team", "external");
        others.remove(OtherKind::ScrapeConfig, "team", "other");
        assert_eq!(others.selected(&kube_prometheus, &namespaces), Ok(vec![]));
        others.unlistable(OtherKind::ScrapeConfig, "forbidden".into());
        assert!(
            others
                .selected(&kube_prometheus, &namespaces)
                .unwrap_err()
                .to_string()
                .contains("cannot be listed (forbidden)")
        );
        let bad =
            prometheus("{scrapeConfigSelector: {matchExpressions: [{key: a, operator: Is}]}}");
        assert!(matches!(
            others.selected(&bad, &namespaces),
            Err(Refused::BadSelector {
                field: "scrapeConfigSelector",
                source: select::SelectorError::UnknownOperator { .. },
            })
        ));
    }
}
