//! The jobs of a PodMonitor: one per endpoint, `podMonitor/<ns>/<name>/<i>`, discovering the
//! selected Pods directly (`role: pod`), in prometheus-operator v0.94's shape
//! (`generatePodMonitorConfig`).

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use serde_yaml_ng::{Mapping, Value};

use super::super::check::Accepted;
use super::super::crd::{PodMetricsEndpoint, PodMonitor};
use super::super::select;
use super::super::yaml;
use super::job::{
    self, EndpointSettings, JobContext, copy_label, namespace_label_rule, selector_rules,
    sharding_rules, user_rule,
};
use super::{map, strings};

/// The resource `excludedFromEnforcement` names PodMonitors by.
const RESOURCE: &str = "podmonitors";

/// Appends the jobs of an accepted PodMonitor to `out`; returns how many.
pub(super) fn jobs(accepted: Accepted<PodMonitor>, ctx: &JobContext, out: &mut String) -> usize {
    let pm = accepted.object;
    let ctx = JobContext {
        class: accepted.class,
        ..*ctx
    };
    let endpoints = &pm.spec.pod_metrics_endpoints;
    for (i, (ep, client)) in endpoints.iter().zip(accepted.clients).enumerate() {
        let job = scrape_job(pm, ep, i, &ctx, client);
        yaml::append(out, &Value::Sequence(vec![Value::Mapping(job)]));
    }
    endpoints.len()
}

fn scrape_job(
    pm: &PodMonitor,
    ep: &PodMetricsEndpoint,
    index: usize,
    ctx: &JobContext,
    client: Mapping,
) -> Mapping {
    let ns = pm.namespace().unwrap_or_default();
    let settings = EndpointSettings {
        honor_labels: ep.honor_labels,
        honor_timestamps: ep.honor_timestamps,
        track_timestamps_staleness: ep.track_timestamps_staleness,
        interval: &ep.interval,
        scrape_timeout: &ep.scrape_timeout,
        path: &ep.path,
        params: &ep.params,
        scheme: &ep.scheme,
        follow_redirects: ep.client.follow_redirects,
        enable_http2: ep.client.enable_http2,
        metric_relabelings: &ep.metric_relabelings,
    };
    let name = format!("podMonitor/{ns}/{}/{index}", pm.name_any());
    let mut job = job::head(name, &settings, ctx);
    job.insert("kubernetes_sd_configs".into(), sd_config(pm, &ns, ctx));
    job::endpoint(&mut job, &settings, client, ctx);
    job.insert(
        "relabel_configs".into(),
        Value::Sequence(relabelings(pm, ep, ctx)),
    );
    let enforce = namespace_label_rule(ctx, RESOURCE, pm);
    job::tail(&mut job, &pm.spec.scrape, &settings, enforce, ctx);
    job
}

/// Whether Pods are selected by the SD's label selectors rather than by keep rules.
fn role_selector(pm: &PodMonitor) -> bool {
    pm.spec.selector_mechanism.as_deref() == Some("RoleSelector")
}

fn sd_config(pm: &PodMonitor, ns: &str, ctx: &JobContext) -> Value {
    let mut sd = Mapping::new();
    sd.insert("role".into(), "pod".into());
    if let Some(names) = job::sd_namespaces(pm.spec.namespace_selector.as_ref(), ns, ctx) {
        sd.insert("namespaces".into(), names);
    }
    let own = pm.spec.scrape.attach_metadata.as_ref();
    if let Some(attach) = job::attach_metadata(own, ctx, (2, 35)) {
        sd.insert("attach_metadata".into(), attach);
    }
    if role_selector(pm) {
        let label = select::selector_string(&pm.spec.selector);
        let selector = map([("role", "pod".into()), ("label", label.as_str().into())]);
        sd.insert("selectors".into(), Value::Sequence(vec![selector]));
    }
    Value::Sequence(vec![Value::Mapping(sd)])
}

/// The relabelings of one job, in prometheus-operator's order.
fn relabelings(pm: &PodMonitor, ep: &PodMetricsEndpoint, ctx: &JobContext) -> Vec<Value> {
    let copy = |source: &str, label: &str| {
        map([
            ("source_labels", strings(&[source])),
            ("target_label", label.into()),
        ])
    };
    let mut rules = vec![copy("job", "__tmp_prometheus_job_name")];
    if ep.filter_running.unwrap_or(true) {
        rules.push(map([
            ("action", "drop".into()),
            ("source_labels", strings(&["__meta_kubernetes_pod_phase"])),
            ("regex", "(Failed|Succeeded)".into()),
        ]));
    }
    if !role_selector(pm) {
        rules.extend(selector_rules(&pm.spec.selector, "pod"));
    }
    rules.extend(port_rule(ep));
    rules.extend([
        copy("__meta_kubernetes_namespace", "namespace"),
        copy("__meta_kubernetes_pod_container_name", "container"),
        copy("__meta_kubernetes_pod_name", "pod"),
    ]);
    let prefix = "__meta_kubernetes_pod_label_";
    for label in pm
        .spec
        .pod_target_labels
        .iter()
        .chain(&ctx.spec.pod_target_labels)
    {
        rules.push(copy_label(prefix, label, &super::sanitize(label)));
    }
    let ns = pm.namespace().unwrap_or_default();
    rules.push(map([
        ("target_label", "job".into()),
        ("replacement", format!("{ns}/{}", pm.name_any()).into()),
    ]));
    if let Some(job_label) = pm.spec.job_label.as_deref().filter(|l| !l.is_empty()) {
        rules.push(copy_label(prefix, job_label, "job"));
    }
    if let Some(endpoint) = endpoint_name(ep) {
        rules.push(map([
            ("target_label", "endpoint".into()),
            ("replacement", endpoint.into()),
        ]));
    }
    let class_rules = ctx.class.map(|c| c.relabelings.as_slice());
    rules.extend(class_rules.unwrap_or_default().iter().map(user_rule));
    rules.extend(ep.relabelings.iter().map(user_rule));
    rules.extend(namespace_label_rule(ctx, RESOURCE, pm));
    rules.extend(sharding_rules(
        ctx.shards,
        ctx.options.shard_retention_policy,
    ));
    rules
}

/// Keeps the container port the endpoint names: `port`, else `portNumber`, else the
/// deprecated `targetPort` (a port number is written as a YAML integer, as the operator
/// writes it).
fn port_rule(ep: &PodMetricsEndpoint) -> Option<Value> {
    let by_name = "__meta_kubernetes_pod_container_port_name";
    let by_number = "__meta_kubernetes_pod_container_port_number";
    let (source, regex): (&str, Value) = match (&ep.port, ep.port_number, &ep.target_port) {
        (Some(port), _, _) if !port.is_empty() => (by_name, port.as_str().into()),
        (_, Some(n), _) if n != 0 => (by_number, n.into()),
        (_, _, Some(IntOrString::String(name))) if !name.is_empty() => {
            (by_name, name.as_str().into())
        }
        (_, _, Some(IntOrString::Int(n))) if *n != 0 => (by_number, (*n).into()),
        _ => return None,
    };
    Some(map([
        ("action", "keep".into()),
        ("source_labels", strings(&[source])),
        ("regex", regex),
    ]))
}

/// The `endpoint` label: the port name, else the deprecated `targetPort` as written (a
/// `portNumber` alone sets none, as with the operator).
fn endpoint_name(ep: &PodMetricsEndpoint) -> Option<String> {
    match (&ep.port, &ep.target_port) {
        (Some(port), _) if !port.is_empty() => Some(port.clone()),
        (_, Some(IntOrString::String(name))) if !name.is_empty() => Some(name.clone()),
        (_, Some(IntOrString::Int(n))) => Some(n.to_string()),
        _ => None,
    }
}
