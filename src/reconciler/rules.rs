//! PrometheusRules -> the rule files of a Prometheus, as prometheus-operator v0.94 writes
//! them: one file per selected PrometheusRule, `<namespace>-<name>-<uid>.yaml`, holding its
//! spec (keys sorted, fields the Prometheus version does not know left out,
//! `enforcedNamespaceLabel` injected into every expression and rule), packed first-fit in
//! name order into ConfigMaps `prometheus-<name>-rulefiles-<i>` of at most
//! [`MAX_CONFIG_MAP_BYTES`]. The config lists `/etc/prometheus/rules/<configmap>/*.yaml` for
//! each (at least the three the StatefulSet mounts), and nothing when `ruleSelector` is unset.
//!
//! A PrometheusRule that Prometheus would refuse to load (bad PromQL, a repeated group name,
//! a malformed template, an unknown field, ...) is left out whole with the reason, like the
//! operator does it, so that one bad object never stops the others from loading.

mod promql;
mod template;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::crd::{Prometheus, PrometheusRule, PrometheusRuleSpec, PrometheusSpec, Rule};
use super::render::{Rejection, supports};
use super::select::{self, NamespaceLabels, key};
use super::validate::duration_ms;

/// The most rule-file bytes one ConfigMap holds (the operator's: half the API's 1 MiB).
pub const MAX_CONFIG_MAP_BYTES: usize = 512 * 1024;
/// Where the StatefulSet mounts the rule ConfigMaps.
pub const RULES_DIR: &str = "/etc/prometheus/rules";
/// The label naming the Prometheus on its rule ConfigMaps (the operator's).
pub const NAME_LABEL: &str = "prometheus-name";
/// ConfigMaps the operator's StatefulSet always mounts (optional ones), and so lists.
pub const MOUNTED_CONFIG_MAPS: usize = 3;

/// The rule files of a Prometheus.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleFiles {
    /// File name -> content.
    pub files: BTreeMap<String, String>,
    /// PrometheusRules in the files, as `namespace/name`.
    pub selected: Vec<String>,
    /// PrometheusRules selected but left out.
    pub rejected: Vec<Rejection>,
}

impl RuleFiles {
    /// The files split into ConfigMaps' data the way the operator splits them: first fit in
    /// file-name order, a new ConfigMap when the next file would pass
    /// [`MAX_CONFIG_MAP_BYTES`]. Always at least one, maybe empty. Borrowed: the config only
    /// needs their number, and the writer copies each file once.
    pub fn config_maps(&self) -> Vec<BTreeMap<&str, &str>> {
        let mut maps = vec![BTreeMap::new()];
        let mut size = 0;
        for (name, content) in &self.files {
            if size + content.len() > MAX_CONFIG_MAP_BYTES {
                maps.push(BTreeMap::new());
                size = 0;
            }
            size += content.len();
            let map = maps.last_mut().expect("never empty");
            map.insert(name.as_str(), content.as_str());
        }
        maps
    }
}

/// Name of the `index`th rule ConfigMap of a Prometheus.
pub fn config_map_name(prometheus: &Prometheus, index: usize) -> String {
    format!("prometheus-{}-rulefiles-{index}", prometheus.name_any())
}

/// The config's `rule_files` for `count` ConfigMaps (at least the mounted ones), or `None`
/// when the Prometheus has no `ruleSelector`.
pub fn rule_file_paths(prometheus: &Prometheus, count: usize) -> Option<Vec<String>> {
    prometheus.spec.rule_selector.as_ref()?;
    let paths = (0..count.max(MOUNTED_CONFIG_MAPS))
        .map(|i| format!("{RULES_DIR}/{}/*.yaml", config_map_name(prometheus, i)))
        .collect();
    Some(paths)
}

/// The rule files of `prometheus` from every known PrometheusRule; an error only when its
/// selectors are malformed.
pub fn render(
    prometheus: &Prometheus,
    namespaces: &NamespaceLabels,
    all: &[PrometheusRule],
) -> Result<RuleFiles, String> {
    let mut out = RuleFiles::default();
    for rule in select::prometheus_rules(prometheus, namespaces, all)? {
        match rule_file(&prometheus.spec, rule) {
            Ok(content) => {
                out.files.insert(file_name(rule), content);
                out.selected.push(key(rule));
            }
            Err(reason) => out.rejected.push(Rejection {
                object: key(rule),
                reason,
            }),
        }
    }
    Ok(out)
}

/// Checks one PromQL expression as rule validation does (with the `promql-parser` crate,
/// which does not know Prometheus's feature-flagged syntax, nor the histogram trim operators
/// `</` and `>/`: a rule using them is left out, saying the expression does not parse).
pub fn check_expression(expr: &str) -> Result<(), promql::ParseError> {
    promql::parse(expr).map(drop)
}

/// `<namespace>-<name>-<uid>.yaml`: the UID keeps `a-b/c` and `a/b-c` apart.
fn file_name(rule: &PrometheusRule) -> String {
    format!(
        "{}-{}-{}.yaml",
        rule.namespace().unwrap_or_default(),
        rule.name_any(),
        rule.uid().unwrap_or_default()
    )
}

/// The file of one PrometheusRule, or why it is left out.
fn rule_file(prometheus: &PrometheusSpec, rule: &PrometheusRule) -> Result<String, String> {
    unknown_fields(&rule.spec)?;
    let mut spec = rule.spec.clone();
    if let Some(label) = enforced_label(prometheus, rule) {
        let ns = rule.namespace().unwrap_or_default();
        for r in spec.groups.iter_mut().flat_map(|g| g.rules.iter_mut()) {
            r.labels.insert(label.to_string(), ns.clone());
            let expr = promql::enforce(&expression(r), label, &ns)
                .map_err(|e| format!("{}: {e}", rule_name(r)))?;
            r.expr = IntOrString::String(expr);
        }
    }
    sanitize(&mut spec, prometheus);
    let legacy = !supports(prometheus, 3, 0);
    validate(&spec, legacy)?;
    let value = serde_json::to_value(&spec).expect("a rule spec serializes");
    let content = serde_yaml_ng::to_string(&value).expect("JSON values serialize as YAML");
    if content.len() > MAX_CONFIG_MAP_BYTES {
        return Err(format!(
            "the rendered rules take {} bytes, over the limit of {MAX_CONFIG_MAP_BYTES}",
            content.len()
        ));
    }
    Ok(content)
}

/// A rule's expression as text (`expr: 1` is the expression `1`).
fn expression(rule: &Rule) -> String {
    match &rule.expr {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// `alert Name` or `record name`, for messages.
fn rule_name(rule: &Rule) -> String {
    match (&rule.alert, &rule.record) {
        (Some(a), _) if !a.is_empty() => format!("alert {a:?}"),
        (_, Some(r)) if !r.is_empty() => format!("record {r:?}"),
        _ => "a rule without alert or record".into(),
    }
}

/// Fields of the spec this reconciler does not know: refused, never dropped.
fn unknown_fields(spec: &PrometheusRuleSpec) -> Result<(), String> {
    let mut unknown: Vec<String> = spec
        .unrendered
        .keys()
        .map(|k| format!("spec.{k}"))
        .collect();
    for (g, group) in spec.groups.iter().enumerate() {
        let at = format!("spec.groups[{g}]");
        unknown.extend(group.unrendered.keys().map(|k| format!("{at}.{k}")));
        for (r, rule) in group.rules.iter().enumerate() {
            unknown.extend(
                rule.unrendered
                    .keys()
                    .map(|k| format!("{at}.rules[{r}].{k}")),
            );
        }
    }
    match unknown.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "unknown fields (not in prometheus-operator's PrometheusRule): {}",
            unknown.join(", ")
        )),
    }
}

/// The label `enforcedNamespaceLabel` sets on this PrometheusRule's rules and selectors,
/// unless `excludedFromEnforcement` (or the deprecated `prometheusRulesExcludedFromEnforce`)
/// lists it.
fn enforced_label<'a>(prometheus: &'a PrometheusSpec, rule: &PrometheusRule) -> Option<&'a str> {
    let label = prometheus
        .enforced_namespace_label
        .as_deref()
        .filter(|l| !l.is_empty())?;
    let (ns, name) = (rule.namespace().unwrap_or_default(), rule.name_any());
    let excluded = prometheus.excluded_from_enforcement.iter().any(|r| {
        matches!(r.group.as_str(), "" | "monitoring.coreos.com")
            && r.resource == "prometheusrules"
            && !r.namespace.is_empty()
            && r.namespace == ns
            && r.name.as_deref().is_none_or(|n| n.is_empty() || n == name)
    }) || prometheus
        .prometheus_rules_excluded_from_enforce
        .iter()
        .any(|r| !r.rule_namespace.is_empty() && r.rule_namespace == ns && r.rule_name == name);
    (!excluded).then_some(label)
}

/// Leaves out what the Prometheus version does not know, as the operator does: `limit`
/// (before 2.31), `query_offset` (2.53), group `labels` (3.0), `keep_firing_for` (2.42), and
/// always `partial_response_strategy` (Thanos only). An empty `interval` or `for` is left
/// out too (the operator writes it, and Prometheus then refuses the file).
fn sanitize(spec: &mut PrometheusRuleSpec, prometheus: &PrometheusSpec) {
    let supports = |major, minor| supports(prometheus, major, minor);
    for group in &mut spec.groups {
        group.partial_response_strategy = None;
        if !supports(2, 31) {
            group.limit = None;
        }
        if !supports(2, 53) {
            group.query_offset = None;
        }
        if !supports(3, 0) {
            group.labels.clear();
        }
        group.interval = group.interval.take().filter(|i| !i.is_empty());
        for rule in &mut group.rules {
            if !supports(2, 42) {
                rule.keep_firing_for = None;
            }
            rule.for_ = rule.for_.take().filter(|f| !f.is_empty());
        }
    }
}

/// What Prometheus checks when it loads a rule file (its `rulefmt`), with messages naming
/// the group and rule.
fn validate(spec: &PrometheusRuleSpec, legacy: bool) -> Result<(), String> {
    let mut names = BTreeSet::new();
    for (g, group) in spec.groups.iter().enumerate() {
        if group.name.is_empty() {
            return Err(format!("group {}: the name must not be empty", g + 1));
        }
        let at = format!("group {:?}", group.name);
        if !names.insert(group.name.as_str()) {
            return Err(format!("{at}: the name is repeated"));
        }
        labels(&group.labels, legacy).map_err(|e| format!("{at}: {e}"))?;
        for (field, value) in [
            ("interval", &group.interval),
            ("query_offset", &group.query_offset),
        ] {
            if let Some(v) = value {
                duration_ms(v).map_err(|e| format!("{at}: {field}: {e}"))?;
            }
        }
        for (i, rule) in group.rules.iter().enumerate() {
            check_rule(rule, legacy)
                .map_err(|e| format!("{at}, rule {} ({}): {e}", i + 1, rule_name(rule)))?;
        }
    }
    Ok(())
}

fn check_rule(rule: &Rule, legacy: bool) -> Result<(), String> {
    let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    match (set(&rule.record), set(&rule.alert)) {
        (true, true) => return Err("only one of record and alert may be set".into()),
        (false, false) => return Err("one of record or alert must be set".into()),
        _ => {}
    }
    let expr = expression(rule);
    if expr.is_empty() {
        return Err("expr must be set".into());
    }
    promql::parse(&expr).map_err(|e| e.to_string())?;
    for (field, value) in [
        ("for", &rule.for_),
        ("keep_firing_for", &rule.keep_firing_for),
    ] {
        if let Some(v) = value {
            duration_ms(v).map_err(|e| format!("{field}: {e}"))?;
        }
    }
    if let Some(record) = rule.record.as_deref().filter(|r| !r.is_empty()) {
        if !rule.annotations.is_empty() {
            return Err("a recording rule has no annotations".into());
        }
        if rule.for_.is_some() || rule.keep_firing_for.is_some() {
            return Err("a recording rule has no for or keep_firing_for".into());
        }
        if !valid_name(record, legacy, true) || record.contains(['{', '}']) {
            return Err(format!("{record:?} is not a valid metric name"));
        }
    }
    labels(&rule.labels, legacy)?;
    for name in rule.annotations.keys() {
        if !valid_name(name, legacy, false) {
            return Err(format!("{name:?} is not a valid annotation name"));
        }
    }
    if set(&rule.alert) {
        let texts = rule.labels.iter().chain(&rule.annotations);
        for (name, text) in texts {
            template::check(text).map_err(|e| format!("{name}: template: {e}"))?;
        }
    }
    Ok(())
}

fn labels(labels: &BTreeMap<String, String>, legacy: bool) -> Result<(), String> {
    match labels
        .keys()
        .find(|k| !valid_name(k, legacy, false) || *k == "__name__")
    {
        Some(k) => Err(format!("{k:?} is not a valid label name")),
        None => Ok(()),
    }
}

/// A label (or, with `metric`, metric) name under Prometheus's validation scheme: before
/// 3.0 the legacy character set, from 3.0 any non-empty UTF-8.
fn valid_name(name: &str, legacy: bool, metric: bool) -> bool {
    if !legacy {
        return !name.is_empty();
    }
    let mut chars = name.chars();
    let first_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (metric && c == ':');
    chars.next().is_some_and(first_ok)
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (metric && c == ':'))
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

    fn rule(name: &str, spec: &str) -> PrometheusRule {
        serde_yaml_ng::from_str(&format!(
            "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {{name: {name}, namespace: mon, uid: u-{name}}}\nspec: {spec}"
        ))
        .unwrap()
    }

    fn rendered(prometheus_spec: &str, rules: &[PrometheusRule]) -> RuleFiles {
        render(&prometheus(prometheus_spec), &NamespaceLabels::new(), rules).unwrap()
    }

    /// The reason `spec` is refused with, under a Prometheus with `prometheus_spec`.
    fn refused(prometheus_spec: &str, spec: &str) -> String {
        let out = rendered(prometheus_spec, &[rule("r", spec)]);
        assert!(out.files.is_empty(), "{out:?}");
        out.rejected[0].reason.clone()
    }

    #[test]
    fn no_rule_selector_selects_nothing_and_lists_no_files() {
        let p = prometheus("{}");
        assert_eq!(rule_file_paths(&p, 1), None);
        let out = rendered("{}", &[rule("r", "{groups: [{name: g}]}")]);
        assert!(out.files.is_empty() && out.selected.is_empty());
        let p = prometheus("{ruleSelector: {}}");
        let paths = rule_file_paths(&p, 4).unwrap();
        assert_eq!(paths.len(), 4);
        assert_eq!(
            paths[3],
            "/etc/prometheus/rules/prometheus-k8s-rulefiles-3/*.yaml"
        );
        assert_eq!(rule_file_paths(&p, 1).unwrap().len(), MOUNTED_CONFIG_MAPS);
    }

    #[test]
    fn a_file_holds_the_sorted_spec_named_by_namespace_name_and_uid() {
        let out = rendered(
            "{ruleSelector: {}}",
            &[rule(
                "r",
                "{groups: [{name: g, partial_response_strategy: warn, rules: [{record: 'a:b', expr: 'sum(up)', labels: {z: '1', a: '2'}}, {alert: A, expr: 1}]}]}",
            )],
        );
        assert_eq!(out.selected, ["mon/r"]);
        assert_eq!(
            out.files["mon-r-u-r.yaml"],
            "groups:\n- name: g\n  rules:\n  - expr: sum(up)\n    labels:\n      a: '2'\n      z: '1'\n    record: a:b\n  - alert: A\n    expr: 1\n"
        );
    }

    #[test]
    fn what_prometheus_would_refuse_is_named() {
        let all = "{ruleSelector: {}}";
        for (spec, says) in [
            (
                "{groups: [{name: g}, {name: g}]}",
                "group \"g\": the name is repeated",
            ),
            (
                "{groups: [{name: ''}]}",
                "group 1: the name must not be empty",
            ),
            (
                "{groups: [{name: g, rules: [{alert: A, record: b, expr: up}]}]}",
                "only one of record and alert",
            ),
            (
                "{groups: [{name: g, rules: [{expr: up}]}]}",
                "one of record or alert",
            ),
            (
                "{groups: [{name: g, rules: [{alert: A}]}]}",
                "expr must be set",
            ),
            (
                "{groups: [{name: g, rules: [{alert: A, expr: 'rate(x[5m]'}]}]}",
                "rule 1 (alert \"A\"): could not parse",
            ),
            (
                "{groups: [{name: g, rules: [{record: a, expr: up, annotations: {x: y}}]}]}",
                "no annotations",
            ),
            (
                "{groups: [{name: g, rules: [{record: a, expr: up, for: 5m}]}]}",
                "no for",
            ),
            (
                "{groups: [{name: g, rules: [{record: 'a{b}', expr: up}]}]}",
                "not a valid metric name",
            ),
            (
                "{groups: [{name: g, rules: [{alert: A, expr: up, labels: {__name__: x}}]}]}",
                "not a valid label name",
            ),
            (
                "{groups: [{name: g, rules: [{alert: A, expr: up, for: soon}]}]}",
                "for: \"soon\" is not a Prometheus duration",
            ),
            ("{groups: [{name: g, interval: 1x}]}", "interval"),
            (
                "{groups: [{name: g, rules: [{alert: A, expr: up, annotations: {s: '{{ if x }}'}}]}]}",
                "s: template",
            ),
            (
                "{groups: [{name: g, rules: [{alert: A, expr: up, severity: page}]}]}",
                "unknown fields (not in prometheus-operator's PrometheusRule): spec.groups[0].rules[0].severity",
            ),
            ("{group: []}", "spec.group"),
        ] {
            let reason = refused(all, spec);
            assert!(reason.contains(says), "{spec}: {reason}");
        }
    }

    #[test]
    fn names_are_checked_by_the_versions_scheme() {
        let spec =
            "{groups: [{name: g, rules: [{record: 'my.metric', expr: up, labels: {'a.b': x}}]}]}";
        assert_eq!(
            rendered("{ruleSelector: {}}", &[rule("r", spec)])
                .files
                .len(),
            1
        );
        let reason = refused("{ruleSelector: {}, version: v2.55.0}", spec);
        assert!(
            reason.contains("\"my.metric\" is not a valid metric name"),
            "{reason}"
        );
    }

    #[test]
    fn fields_the_version_does_not_know_are_left_out_as_the_operator_does() {
        let spec = "{groups: [{name: g, limit: 5, query_offset: 1m, labels: {t: x}, interval: '', rules: [{alert: A, expr: up, for: '', keep_firing_for: 1m}]}]}";
        let file = |version: &str| {
            let out = rendered(
                &format!("{{ruleSelector: {{}}, version: {version}}}"),
                &[rule("r", spec)],
            );
            out.files.into_values().next().unwrap()
        };
        let current = file("v3.5.0");
        for kept in [
            "limit: 5",
            "query_offset: 1m",
            "t: x",
            "keep_firing_for: 1m",
        ] {
            assert!(current.contains(kept), "{current}");
        }
        assert!(
            !current.contains("interval") && !current.contains("for: ''"),
            "{current}"
        );
        let old = file("v2.30.0");
        for dropped in ["limit", "query_offset", "t: x", "keep_firing_for"] {
            assert!(!old.contains(dropped), "{old}");
        }
    }

    #[test]
    fn the_namespace_label_is_enforced_unless_excluded() {
        let spec = "{groups: [{name: g, rules: [{record: r, expr: 'up{tenant=\"x\"}', labels: {tenant: spoof}}]}]}";
        let enforced = "{ruleSelector: {}, enforcedNamespaceLabel: tenant}";
        let out = rendered(enforced, &[rule("r", spec)]);
        let file = &out.files["mon-r-u-r.yaml"];
        assert!(file.contains("expr: up{tenant=\"mon\"}"), "{file}");
        assert!(file.contains("tenant: mon"), "{file}");
        for excluded in [
            "excludedFromEnforcement: [{resource: prometheusrules, namespace: mon, name: r}]",
            "excludedFromEnforcement: [{group: monitoring.coreos.com, resource: prometheusrules, namespace: mon}]",
            "prometheusRulesExcludedFromEnforce: [{ruleNamespace: mon, ruleName: r}]",
        ] {
            let p = format!("{{ruleSelector: {{}}, enforcedNamespaceLabel: tenant, {excluded}}}");
            let out = rendered(&p, &[rule("r", spec)]);
            let file = &out.files["mon-r-u-r.yaml"];
            assert!(
                file.contains("tenant=\"x\"") && file.contains("spoof"),
                "{excluded}: {file}"
            );
        }
    }

    #[test]
    fn config_maps_are_packed_first_fit_in_name_order() {
        let big = "x".repeat(200 * 1024);
        let files = RuleFiles {
            files: (0..5)
                .map(|i| (format!("f{i}.yaml"), big.clone()))
                .collect(),
            ..RuleFiles::default()
        };
        let maps = files.config_maps();
        let keys: Vec<Vec<&str>> = maps.iter().map(|m| m.keys().copied().collect()).collect();
        assert_eq!(
            keys,
            [
                vec!["f0.yaml", "f1.yaml"],
                vec!["f2.yaml", "f3.yaml"],
                vec!["f4.yaml"]
            ]
        );
        assert_eq!(RuleFiles::default().config_maps(), vec![BTreeMap::new()]);
    }
}
