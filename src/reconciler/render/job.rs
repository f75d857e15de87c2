//! What every scrape job shares, whichever object it comes from: the endpoint's settings,
//! the object's limits and histogram settings, label selection and copying, the user's
//! relabelings, enforcement and sharding.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;
use serde_yaml_ng::{Mapping, Value};

use super::super::crd::{
    AttachMetadata, NamespaceSelector, PrometheusSpec, RelabelConfig, ScrapeClass, ScrapeSettings,
};
use super::super::validate;
use super::global::global_limits;
use super::{Options, go_float, map, sanitize, strings, supports};

/// An endpoint's own settings, from a ServiceMonitor's or PodMonitor's endpoint.
pub(super) struct EndpointSettings<'a> {
    pub honor_labels: Option<bool>,
    pub honor_timestamps: Option<bool>,
    pub track_timestamps_staleness: Option<bool>,
    pub interval: &'a Option<String>,
    pub scrape_timeout: &'a Option<String>,
    pub path: &'a Option<String>,
    pub params: &'a Option<BTreeMap<String, Vec<String>>>,
    pub scheme: &'a Option<String>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
    pub metric_relabelings: &'a [RelabelConfig],
}

/// A job's first entries: its name and how it treats the target's labels and timestamps.
pub(super) fn head(name: String, ep: &EndpointSettings, ctx: &JobContext) -> Mapping {
    let mut job = Mapping::new();
    job.insert("job_name".into(), name.into());
    let spec = ctx.spec;
    let override_labels = spec.override_honor_labels.unwrap_or(false);
    job.insert(
        "honor_labels".into(),
        (ep.honor_labels.unwrap_or(false) && !override_labels).into(),
    );
    let override_timestamps = spec.override_honor_timestamps.unwrap_or(false);
    if ep.honor_timestamps.is_some() || override_timestamps {
        let honor = ep.honor_timestamps.unwrap_or(false) && !override_timestamps;
        job.insert("honor_timestamps".into(), honor.into());
    }
    if let Some(track) = ep
        .track_timestamps_staleness
        .filter(|_| ctx.supports(2, 48))
    {
        job.insert("track_timestamps_staleness".into(), track.into());
    }
    job
}

/// The endpoint's scrape settings: interval, timeout, path, parameters, scheme, redirects and
/// HTTP/2, then the resolved client entries.
pub(super) fn endpoint(
    job: &mut Mapping,
    ep: &EndpointSettings,
    client: Mapping,
    ctx: &JobContext,
) {
    let optional = [
        ("scrape_interval", ep.interval),
        ("scrape_timeout", ep.scrape_timeout),
        ("metrics_path", ep.path),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            job.insert(k.into(), v.as_str().into());
        }
    }
    if let Some(params) = ep.params {
        let params = params
            .iter()
            .map(|(k, vs)| {
                (
                    k.as_str().into(),
                    strings(&vs.iter().map(String::as_str).collect::<Vec<_>>()),
                )
            })
            .collect();
        job.insert("params".into(), Value::Mapping(params));
    }
    if let Some(scheme) = ep.scheme {
        job.insert("scheme".into(), scheme.to_ascii_lowercase().into());
    }
    if let Some(follow) = ep.follow_redirects.filter(|_| ctx.supports(2, 26)) {
        job.insert("follow_redirects".into(), follow.into());
    }
    if let Some(http2) = ep.enable_http2.filter(|_| ctx.supports(2, 35)) {
        job.insert("enable_http2".into(), http2.into());
    }
    job.extend(client);
}

/// The entries after the relabelings: limits (under the enforced ones), native histograms,
/// protocols, body size, and the metric relabelings (the scrape class's, the endpoint's, then
/// the enforced namespace label).
pub(super) fn tail(
    job: &mut Mapping,
    scrape: &ScrapeSettings,
    ep: &EndpointSettings,
    enforce: Option<Value>,
    ctx: &JobContext,
) {
    let enforced = global_limits(ctx.spec);
    let limits = [
        ("sample_limit", scrape.sample_limit, (0, 0)),
        ("target_limit", scrape.target_limit, (2, 21)),
        ("label_limit", scrape.label_limit, (2, 27)),
        (
            "label_name_length_limit",
            scrape.label_name_length_limit,
            (2, 27),
        ),
        (
            "label_value_length_limit",
            scrape.label_value_length_limit,
            (2, 27),
        ),
        ("keep_dropped_targets", scrape.keep_dropped_targets, (2, 47)),
    ];
    for ((key, limit, (major, minor)), (_, _, enforced, _)) in limits.into_iter().zip(enforced) {
        let limit = job_limit(limit, enforced, ctx);
        if let Some(limit) = limit.filter(|_| ctx.supports(major, minor)) {
            job.insert(key.into(), limit.into());
        }
    }
    native_histograms(scrape, ctx, job);
    if !scrape.scrape_protocols.is_empty() && ctx.supports(2, 49) {
        let protocols: Vec<&str> = scrape
            .scrape_protocols
            .iter()
            .map(String::as_str)
            .filter(|p| *p != "PrometheusText1.0.0" || ctx.supports(3, 0))
            .collect();
        job.insert("scrape_protocols".into(), strings(&protocols));
    }
    let class_fallback = ctx
        .class
        .and_then(|c| c.fallback_scrape_protocol.as_deref());
    if let Some(fallback) = scrape
        .fallback_scrape_protocol
        .as_deref()
        .or(class_fallback)
        .filter(|_| ctx.supports(3, 0))
    {
        job.insert("fallback_scrape_protocol".into(), fallback.into());
    }
    let size = lower_size(
        scrape.body_size_limit.as_deref(),
        ctx.spec.enforced_body_size_limit.as_deref(),
    );
    if let Some(size) = size.filter(|_| ctx.supports(2, 28)) {
        job.insert("body_size_limit".into(), size.into());
    }
    let class_rules = ctx.class.map(|c| c.metric_relabelings.as_slice());
    let mut metric_rules: Vec<Value> = class_rules
        .unwrap_or_default()
        .iter()
        .chain(ep.metric_relabelings)
        .map(user_rule)
        .collect();
    metric_rules.extend(enforce);
    if !metric_rules.is_empty() {
        job.insert(
            "metric_relabel_configs".into(),
            Value::Sequence(metric_rules),
        );
    }
}

/// A job's limit under an enforced one, as the operator computes it: the smaller of the two;
/// without a job limit, none (from Prometheus 2.45 the global section carries the enforced
/// one) or the enforced one (older versions).
fn job_limit(user: Option<u64>, enforced: Option<u64>, ctx: &JobContext) -> Option<u64> {
    match (user, enforced.filter(|e| *e > 0)) {
        (user, None) => user,
        (None | Some(0), Some(e)) => (!ctx.supports(2, 45)).then_some(e),
        (Some(u), Some(e)) => Some(u.min(e)),
    }
}

/// The smaller of a job's body size limit and the enforced one, in bytes (units are powers of
/// 1024, as Prometheus reads them); either one when the other is unset.
fn lower_size<'a>(user: Option<&'a str>, enforced: Option<&'a str>) -> Option<&'a str> {
    let (user, enforced) = (
        user.filter(|s| !s.is_empty()),
        enforced.filter(|s| !s.is_empty()),
    );
    match (user, enforced) {
        (Some(u), Some(e)) if size_bytes(u) > size_bytes(e) => Some(e),
        (Some(u), _) => Some(u),
        (None, e) => e,
    }
}

fn size_bytes(s: &str) -> f64 {
    let digits = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let number: f64 = s[..digits].parse().unwrap_or(0.0);
    let power = match s[digits..].chars().next() {
        Some('K') => 1,
        Some('M') => 2,
        Some('G') => 3,
        Some('T') => 4,
        Some('P') => 5,
        Some('E') => 6,
        _ => 0,
    };
    number * 1024f64.powi(power)
}

/// What every job of one object shares.
#[derive(Clone, Copy)]
pub(super) struct JobContext<'a> {
    /// The number of shards.
    pub shards: u64,
    /// The feature gates.
    pub options: &'a Options,
    /// The Prometheus's settings that shape every job.
    pub spec: &'a PrometheusSpec,
    /// The object's scrape class (named, or the default one).
    pub class: Option<&'a ScrapeClass>,
}

impl JobContext<'_> {
    /// Whether the Prometheus version has a setting added in `major.minor`.
    pub fn supports(&self, major: u64, minor: u64) -> bool {
        supports(self.spec, major, minor)
    }
}

/// The native-histogram settings, each from the Prometheus version that has it.
fn native_histograms(spec: &ScrapeSettings, ctx: &JobContext, job: &mut Mapping) {
    if let Some(on) = spec.scrape_native_histograms.filter(|_| ctx.supports(3, 8)) {
        job.insert("scrape_native_histograms".into(), on.into());
    }
    if let Some(limit) = spec
        .native_histogram_bucket_limit
        .filter(|_| ctx.supports(2, 45))
    {
        job.insert("native_histogram_bucket_limit".into(), limit.into());
    }
    let factor = spec.native_histogram_min_bucket_factor.as_ref();
    if let Some(factor) = factor
        .and_then(validate::quantity)
        .filter(|_| ctx.supports(2, 50))
    {
        job.insert(
            "native_histogram_min_bucket_factor".into(),
            go_float(factor),
        );
    }
    if let Some(classic) = spec.scrape_classic_histograms {
        if ctx.supports(3, 0) {
            job.insert("always_scrape_classic_histograms".into(), classic.into());
        } else if ctx.supports(2, 45) {
            job.insert("scrape_classic_histograms".into(), classic.into());
        }
    }
    if let Some(convert) = spec
        .convert_classic_histograms_to_nhcb
        .filter(|_| ctx.supports(3, 0))
    {
        job.insert("convert_classic_histograms_to_nhcb".into(), convert.into());
    }
}

/// `enforcedNamespaceLabel`: the label set to the object's namespace, appended last so no
/// relabeling of the user's can override it; not for objects listed in
/// `excludedFromEnforcement` (`resource`: `servicemonitors`, `podmonitors`).
pub(super) fn namespace_label_rule(
    ctx: &JobContext,
    resource: &str,
    object: &impl ResourceExt,
) -> Option<Value> {
    let label = ctx
        .spec
        .enforced_namespace_label
        .as_deref()
        .filter(|l| !l.is_empty())?;
    let ns = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let excluded = ctx.spec.excluded_from_enforcement.iter().any(|r| {
        let group = if r.group.is_empty() {
            "monitoring.coreos.com"
        } else {
            r.group.as_str()
        };
        group == "monitoring.coreos.com"
            && r.resource == resource
            && r.namespace == ns
            && r.name.as_deref().is_none_or(|n| n.is_empty() || n == name)
    });
    if excluded {
        return None;
    }
    Some(map([
        ("target_label", label.into()),
        ("replacement", ns.as_str().into()),
    ]))
}

/// The `namespaces` of a Kubernetes SD config: the object's own namespace unless its selector
/// names others (`matchNames`) or all (`any`, no entry); only its own with the Prometheus's
/// `ignoreNamespaceSelectors`.
pub(super) fn sd_namespaces(
    selector: Option<&NamespaceSelector>,
    own: &str,
    ctx: &JobContext,
) -> Option<Value> {
    let ignore = ctx.spec.ignore_namespace_selectors.unwrap_or(false);
    let names: Vec<&str> = match selector.filter(|_| !ignore) {
        Some(s) if s.any => return None,
        Some(s) if !s.match_names.is_empty() => s.match_names.iter().map(String::as_str).collect(),
        _ => vec![own],
    };
    Some(map([("names", strings(&names))]))
}

/// The `attach_metadata` of a Kubernetes SD config: the object's, else its scrape class's,
/// from Prometheus `min` (2.37 for ServiceMonitors, 2.35 for PodMonitors, as the operator
/// gates them).
pub(super) fn attach_metadata(
    own: Option<&AttachMetadata>,
    ctx: &JobContext,
    (major, minor): (u64, u64),
) -> Option<Value> {
    let class_attach = ctx.class.and_then(|c| c.attach_metadata.as_ref());
    let attach = own
        .or(class_attach)
        .filter(|_| ctx.supports(major, minor))?;
    let node = attach.node.unwrap_or(false);
    Some(map([("node", node.into())]))
}

/// The keep and drop rules that select targets by label, as the operator writes them for
/// `selectorMechanism: RelabelConfig`; `object` is `service` or `pod`.
pub(super) fn selector_rules(selector: &LabelSelector, object: &str) -> Vec<Value> {
    let labels = |k: &str| {
        let k = sanitize(k);
        format!("__meta_kubernetes_{object}_label_{k}")
    };
    let present = |k: &str| {
        let k = sanitize(k);
        format!("__meta_kubernetes_{object}_labelpresent_{k}")
    };
    let keep_drop = |action: &str, sources: Vec<String>, regex: String| {
        let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
        map([
            ("action", action.into()),
            ("source_labels", strings(&sources)),
            ("regex", regex.into()),
        ])
    };
    let mut rules: Vec<Value> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| keep_drop("keep", vec![labels(k), present(k)], format!("({v});true")))
        .collect();
    for req in selector.match_expressions.iter().flatten() {
        let values = req.values.as_deref().unwrap_or_default().join("|");
        let k = &req.key;
        rules.push(match req.operator.as_str() {
            "In" => keep_drop(
                "keep",
                vec![labels(k), present(k)],
                format!("({values});true"),
            ),
            "NotIn" => keep_drop(
                "drop",
                vec![labels(k), present(k)],
                format!("({values});true"),
            ),
            "Exists" => keep_drop("keep", vec![present(k)], "true".into()),
            _ => keep_drop("drop", vec![present(k)], "true".into()),
        });
    }
    rules
}

/// Copies a non-empty label from `prefix + sanitize(label)` to `target`.
pub(super) fn copy_label(prefix: &str, label: &str, target: &str) -> Value {
    map([
        (
            "source_labels",
            strings(&[&format!("{prefix}{}", sanitize(label))]),
        ),
        ("target_label", target.into()),
        ("regex", "(.+)".into()),
        ("replacement", "${1}".into()),
    ])
}

/// A user's relabel rule in Prometheus's snake_case, action lower-cased.
pub fn user_rule(rule: &RelabelConfig) -> Value {
    let mut m = Mapping::new();
    if !rule.source_labels.is_empty() {
        let sources: Vec<&str> = rule.source_labels.iter().map(String::as_str).collect();
        m.insert("source_labels".into(), strings(&sources));
    }
    let optional = [
        ("separator", rule.separator.clone()),
        ("target_label", rule.target_label.clone()),
        ("regex", rule.regex.clone()),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            m.insert(k.into(), v.into());
        }
    }
    if let Some(modulus) = rule.modulus {
        m.insert("modulus".into(), modulus.into());
    }
    if let Some(replacement) = &rule.replacement {
        m.insert("replacement".into(), replacement.as_str().into());
    }
    if let Some(action) = &rule.action {
        m.insert("action".into(), action.to_ascii_lowercase().into());
    }
    Value::Mapping(m)
}

pub fn sharding_rules(shards: u64, retention_policy: bool) -> Vec<Value> {
    sharding_rules_on("__address__", shards, retention_policy)
}

/// The sharding rules, hashing `label` (Probes hash `__param_target`).
pub(super) fn sharding_rules_on(label: &str, shards: u64, retention_policy: bool) -> Vec<Value> {
    let mut rules = Vec::new();
    if retention_policy {
        // Only targets of an active shard, [0, shards): a shard kept after a scale-down
        // (retention policy Retain) scrapes nothing.
        let active: Vec<String> = (0..shards).map(|i| i.to_string()).collect();
        rules.push(map([
            ("target_label", "__tmp_current_shard".into()),
            ("replacement", "$(SHARD)".into()),
            ("action", "replace".into()),
        ]));
        rules.push(map([
            ("source_labels", strings(&["__tmp_current_shard"])),
            ("regex", active.join("|").into()),
            ("action", "keep".into()),
        ]));
    }
    rules.extend([
        map([
            ("source_labels", strings(&[label, "__tmp_hash"])),
            ("target_label", "__tmp_hash".into()),
            ("regex", "(.+);".into()),
            ("replacement", "$1".into()),
            ("action", "replace".into()),
        ]),
        map([
            ("source_labels", strings(&["__tmp_hash"])),
            ("target_label", "__tmp_hash".into()),
            ("modulus", shards.into()),
            ("action", "hashmod".into()),
        ]),
        map([
            (
                "source_labels",
                strings(&["__tmp_hash", "__tmp_disable_sharding"]),
            ),
            ("regex", "$(SHARD);|.+;.+".into()),
            ("action", "keep".into()),
        ]),
    ]);
    rules
}
