//! The job of a Probe: `probe/<ns>/<name>`, its targets (static, or the hosts and paths of
//! selected Ingresses) passed to the prober as `__param_target`, in prometheus-operator
//! v0.94's shape (`generateProbeConfig`).

use kube::ResourceExt;
use serde_yaml_ng::{Mapping, Value};

use super::super::check::Accepted;
use super::super::crd::{NamespaceSelector, Probe};
use super::super::yaml;
use super::job::{
    self, EndpointSettings, JobContext, namespace_label_rule, selector_rules, sharding_rules_on,
    user_rule,
};
use super::{map, string_map, strings};

/// The resource `excludedFromEnforcement` names Probes by.
const RESOURCE: &str = "probes";

/// The prober's path when the Probe sets none (the upstream CRD's default).
const DEFAULT_PATH: &str = "/probe";

/// Appends the job of an accepted Probe to `out`; returns how many (one).
pub(super) fn jobs(accepted: Accepted<Probe>, ctx: &JobContext, out: &mut String) -> usize {
    let probe = accepted.object;
    let ctx = JobContext {
        class: accepted.class,
        ..*ctx
    };
    let client = accepted.clients.into_iter().next().unwrap_or_default();
    let job = scrape_job(probe, &ctx, client);
    yaml::append(out, &Value::Sequence(vec![Value::Mapping(job)]));
    1
}

fn scrape_job(probe: &Probe, ctx: &JobContext, client: Mapping) -> Mapping {
    let spec = &probe.spec;
    let ns = probe.namespace().unwrap_or_default();
    let mut job = Mapping::new();
    job.insert(
        "job_name".into(),
        format!("probe/{ns}/{}", probe.name_any()).into(),
    );
    // The operator asks for the target's timestamps, unless the Prometheus overrides it.
    let override_timestamps = ctx.spec.override_honor_timestamps.unwrap_or(false);
    job.insert("honor_timestamps".into(), (!override_timestamps).into());
    let path = spec.prober.path.clone().unwrap_or(DEFAULT_PATH.into());
    let settings = EndpointSettings {
        honor_labels: None,
        honor_timestamps: None,
        track_timestamps_staleness: None,
        interval: &spec.interval,
        scrape_timeout: &spec.scrape_timeout,
        path: &Some(path),
        params: &None,
        scheme: &spec.prober.scheme,
        follow_redirects: spec.client.follow_redirects,
        enable_http2: spec.client.enable_http2,
        metric_relabelings: &spec.metric_relabelings,
    };
    job::endpoint(&mut job, &settings, client, ctx);
    if let Some(params) = params(probe) {
        job.insert("params".into(), params);
    }
    let mut rules = vec![map([
        ("source_labels", strings(&["job"])),
        ("target_label", "__tmp_prometheus_job_name".into()),
    ])];
    if let Some(name) = spec.job_name.as_deref().filter(|n| !n.is_empty()) {
        rules.push(map([
            ("target_label", "job".into()),
            ("replacement", name.into()),
        ]));
    }
    let enforce = namespace_label_rule(ctx, RESOURCE, probe);
    let prober = |rules: &mut Vec<Value>| {
        rules.push(map([
            ("source_labels", strings(&["__param_target"])),
            ("target_label", "instance".into()),
        ]));
        rules.push(map([
            ("target_label", "__address__".into()),
            ("replacement", spec.prober.url.as_str().into()),
        ]));
    };
    let class_rules = ctx.class.map(|c| c.relabelings.as_slice());
    let class_rules = class_rules.unwrap_or_default().iter().map(user_rule);
    // Static targets win over Ingresses when both are set, as with the operator.
    if let Some(static_config) = &spec.targets.static_config {
        let mut labels = static_config.labels.clone().unwrap_or_default();
        labels.entry("namespace".into()).or_insert(ns.clone());
        let targets: Vec<&str> = static_config.targets.iter().map(String::as_str).collect();
        let static_configs = map([
            ("targets", strings(&targets)),
            ("labels", string_map(&labels)),
        ]);
        job.insert(
            "static_configs".into(),
            Value::Sequence(vec![static_configs]),
        );
        rules.push(map([
            ("source_labels", strings(&["__address__"])),
            ("target_label", "__param_target".into()),
        ]));
        prober(&mut rules);
        rules.extend(class_rules);
        rules.extend(static_config.relabeling_configs.iter().map(user_rule));
        rules.extend(enforce.clone());
    } else if let Some(ingress) = &spec.targets.ingress {
        rules.extend(selector_rules(&ingress.selector, "ingress"));
        job.insert(
            "kubernetes_sd_configs".into(),
            sd_config(ingress.namespace_selector.as_ref(), &ns, ctx),
        );
        rules.push(map([
            (
                "source_labels",
                strings(&[
                    "__meta_kubernetes_ingress_scheme",
                    "__address__",
                    "__meta_kubernetes_ingress_path",
                ]),
            ),
            ("separator", ";".into()),
            ("regex", "(.+);(.+);(.+)".into()),
            ("target_label", "__param_target".into()),
            ("replacement", "${1}://${2}${3}".into()),
            ("action", "replace".into()),
        ]));
        rules.push(map([
            ("source_labels", strings(&["__meta_kubernetes_namespace"])),
            ("target_label", "namespace".into()),
        ]));
        rules.push(map([
            (
                "source_labels",
                strings(&["__meta_kubernetes_ingress_name"]),
            ),
            ("target_label", "ingress".into()),
        ]));
        rules.push(map([
            ("source_labels", strings(&["__address__"])),
            ("separator", ";".into()),
            ("regex", "(.*)".into()),
            ("target_label", "__tmp_ingress_address".into()),
            ("replacement", "$1".into()),
            ("action", "replace".into()),
        ]));
        prober(&mut rules);
        rules.extend(class_rules);
        rules.extend(ingress.relabeling_configs.iter().map(user_rule));
        rules.extend(enforce.clone());
    }
    rules.extend(sharding_rules_on(
        "__param_target",
        ctx.shards,
        ctx.options.shard_retention_policy,
    ));
    job.insert("relabel_configs".into(), Value::Sequence(rules));
    job::tail(&mut job, &spec.scrape, &settings, enforce, ctx);
    job
}

/// `module` first (as `module: [m]`), then the other parameters (a `module` among them is
/// dropped when `module` is set).
fn params(probe: &Probe) -> Option<Value> {
    let spec = &probe.spec;
    let module = spec.module.as_deref().filter(|m| !m.is_empty());
    let mut out = Mapping::new();
    if let Some(module) = module {
        out.insert("module".into(), strings(&[module]));
    }
    for param in &spec.params {
        if module.is_some() && param.name == "module" {
            continue;
        }
        let values: Vec<&str> = param.values.iter().map(String::as_str).collect();
        out.insert(param.name.as_str().into(), strings(&values));
    }
    (!out.is_empty()).then_some(Value::Mapping(out))
}

/// Kubernetes SD of Ingresses in the namespaces the selector names.
fn sd_config(selector: Option<&NamespaceSelector>, ns: &str, ctx: &JobContext) -> Value {
    let mut sd = Mapping::new();
    sd.insert("role".into(), "ingress".into());
    if let Some(names) = job::sd_namespaces(selector, ns, ctx) {
        sd.insert("namespaces".into(), names);
    }
    Value::Sequence(vec![Value::Mapping(sd)])
}
