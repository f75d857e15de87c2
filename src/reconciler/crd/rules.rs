//! `PrometheusRule`: groups of alerting and recording rules, rendered into the rule-file
//! ConfigMaps a Prometheus mounts (see `rules`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Fields this reconciler does not know: refused, never dropped (see `rules`).
type Unrendered = BTreeMap<String, serde_json::Value>;

/// Alerting and recording rules for the Prometheuses that select them (`ruleSelector`).
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "PrometheusRule",
    plural = "prometheusrules",
    shortname = "promrule",
    namespaced
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct PrometheusRuleSpec {
    /// The rule groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<RuleGroup>,
    /// Fields this reconciler does not know.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: Unrendered,
}

/// A group of rules evaluated together.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
pub struct RuleGroup {
    /// The group's name, unique in its PrometheusRule.
    #[serde(default)]
    pub name: String,
    /// Labels added to every rule's output (Prometheus 3.0 and later).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// How often the rules are evaluated (Prometheus duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// How far back the rules look (Prometheus 2.53 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_offset: Option<String>,
    /// The rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// Thanos only; never written for Prometheus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_response_strategy: Option<String>,
    /// Most alerts or series one evaluation may produce (Prometheus 2.31 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Fields this reconciler does not know.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: Unrendered,
}

/// An alerting (`alert`) or recording (`record`) rule.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
pub struct Rule {
    /// The recorded series' name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// The alert's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// The PromQL expression.
    #[serde(default = "empty_expr")]
    pub expr: IntOrString,
    /// How long the alert is pending before it fires.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// How long the alert keeps firing after its condition cleared (Prometheus 2.42 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<String>,
    /// Labels added to the output.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations of the alert.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields this reconciler does not know.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(skip)]
    pub unrendered: Unrendered,
}

fn empty_expr() -> IntOrString {
    IntOrString::String(String::new())
}
