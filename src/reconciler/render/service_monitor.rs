//! The jobs of a ServiceMonitor: one per endpoint, `serviceMonitor/<ns>/<name>/<i>`,
//! discovering the endpoints (or endpoint slices) of the selected Services.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use serde_yaml_ng::{Mapping, Value};

use super::super::check::Accepted;
use super::super::crd::{Endpoint, ServiceMonitor};
use super::super::select;
use super::super::yaml;
use super::job::{
    self, EndpointSettings, JobContext, copy_label, namespace_label_rule, selector_rules,
    sharding_rules, user_rule,
};
use super::{map, sanitize, strings};

/// The resource `excludedFromEnforcement` names ServiceMonitors by.
const RESOURCE: &str = "servicemonitors";

/// Appends the jobs of an accepted ServiceMonitor to `out`; returns how many.
pub(super) fn jobs(
    accepted: Accepted<ServiceMonitor>,
    ctx: &JobContext,
    out: &mut String,
) -> usize {
    let sm = accepted.object;
    let ctx = JobContext {
        class: accepted.class,
        ..*ctx
    };
    for (i, (ep, client)) in sm.spec.endpoints.iter().zip(accepted.clients).enumerate() {
        let job = scrape_job(sm, ep, i, &ctx, client);
        yaml::append(out, &Value::Sequence(vec![Value::Mapping(job)]));
    }
    sm.spec.endpoints.len()
}

fn scrape_job(
    sm: &ServiceMonitor,
    ep: &Endpoint,
    index: usize,
    ctx: &JobContext,
    client: Mapping,
) -> Mapping {
    let ns = sm.namespace().unwrap_or_default();
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
    let name = format!("serviceMonitor/{ns}/{}/{index}", sm.name_any());
    let mut job = job::head(name, &settings, ctx);
    job.insert("kubernetes_sd_configs".into(), sd_config(sm, &ns, ctx));
    job::endpoint(&mut job, &settings, client, ctx);
    job.insert(
        "relabel_configs".into(),
        Value::Sequence(relabelings(sm, ep, ctx)),
    );
    let enforce = namespace_label_rule(ctx, RESOURCE, sm);
    job::tail(&mut job, &sm.spec.scrape, &settings, enforce, ctx);
    job
}

/// The Kubernetes SD role of a ServiceMonitor's jobs: `endpointslice` when it (or, by
/// default, its Prometheus) asks for `EndpointSlice` and Prometheus supports it (2.21+).
fn role(sm: &ServiceMonitor, ctx: &JobContext) -> &'static str {
    let wanted = sm
        .spec
        .service_discovery_role
        .as_deref()
        .or(ctx.spec.service_discovery_role.as_deref());
    if wanted == Some("EndpointSlice") && ctx.supports(2, 21) {
        "endpointslice"
    } else {
        "endpoints"
    }
}

/// Whether Services are selected by the SD's label selectors rather than by keep rules.
fn role_selector(sm: &ServiceMonitor) -> bool {
    sm.spec.selector_mechanism.as_deref() == Some("RoleSelector")
}

fn sd_config(sm: &ServiceMonitor, ns: &str, ctx: &JobContext) -> Value {
    let mut sd = Mapping::new();
    sd.insert("role".into(), role(sm, ctx).into());
    if let Some(names) = job::sd_namespaces(sm.spec.namespace_selector.as_ref(), ns, ctx) {
        sd.insert("namespaces".into(), names);
    }
    let own = sm.spec.scrape.attach_metadata.as_ref();
    if let Some(attach) = job::attach_metadata(own, ctx, (2, 37)) {
        sd.insert("attach_metadata".into(), attach);
    }
    if role_selector(sm) {
        let label = select::selector_string(&sm.spec.selector);
        let selectors = [role(sm, ctx), "service"]
            .into_iter()
            .map(|r| map([("role", r.into()), ("label", label.as_str().into())]))
            .collect();
        sd.insert("selectors".into(), Value::Sequence(selectors));
    }
    Value::Sequence(vec![Value::Mapping(sd)])
}

/// The relabelings of one job, in prometheus-operator's order.
fn relabelings(sm: &ServiceMonitor, ep: &Endpoint, ctx: &JobContext) -> Vec<Value> {
    let mut rules = vec![map([
        ("source_labels", strings(&["job"])),
        ("target_label", "__tmp_prometheus_job_name".into()),
    ])];
    if !role_selector(sm) {
        rules.extend(selector_rules(&sm.spec.selector, "service"));
    }
    let slices = role(sm, ctx) == "endpointslice";
    rules.extend(port_rule(ep, slices));
    rules.extend(meta_rules(ep, slices));
    for (labels, prefix) in [
        (&sm.spec.target_labels, "__meta_kubernetes_service_label_"),
        (&sm.spec.pod_target_labels, "__meta_kubernetes_pod_label_"),
        (&ctx.spec.pod_target_labels, "__meta_kubernetes_pod_label_"),
    ] {
        rules.extend(labels.iter().map(|l| copy_label(prefix, l, &sanitize(l))));
    }
    rules.push(map([
        (
            "source_labels",
            strings(&["__meta_kubernetes_service_name"]),
        ),
        ("target_label", "job".into()),
        ("replacement", "${1}".into()),
    ]));
    if let Some(job_label) = &sm.spec.job_label {
        rules.push(copy_label(
            "__meta_kubernetes_service_label_",
            job_label,
            "job",
        ));
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
    rules.extend(namespace_label_rule(ctx, RESOURCE, sm));
    rules.extend(sharding_rules(
        ctx.shards,
        ctx.options.shard_retention_policy,
    ));
    rules
}

fn port_rule(ep: &Endpoint, slices: bool) -> Option<Value> {
    let port_name = if slices {
        "__meta_kubernetes_endpointslice_port_name"
    } else {
        "__meta_kubernetes_endpoint_port_name"
    };
    // A port number is written as a YAML integer, as the operator writes it.
    let (source, regex): (&str, Value) = match (&ep.port, &ep.target_port) {
        (Some(port), _) => (port_name, port.as_str().into()),
        (None, Some(IntOrString::String(name))) => (
            "__meta_kubernetes_pod_container_port_name",
            name.as_str().into(),
        ),
        (None, Some(IntOrString::Int(n))) if *n != 0 => {
            ("__meta_kubernetes_pod_container_port_number", (*n).into())
        }
        _ => return None,
    };
    Some(map([
        ("action", "keep".into()),
        ("source_labels", strings(&[source])),
        ("regex", regex),
    ]))
}

fn endpoint_name(ep: &Endpoint) -> Option<String> {
    match (&ep.port, &ep.target_port) {
        (Some(port), _) => Some(port.clone()),
        (None, Some(IntOrString::String(name))) if !name.is_empty() => Some(name.clone()),
        (None, Some(IntOrString::Int(n))) => Some(n.to_string()),
        _ => None,
    }
}

fn meta_rules(ep: &Endpoint, slices: bool) -> Vec<Value> {
    let target = if slices {
        [
            "__meta_kubernetes_endpointslice_address_target_kind",
            "__meta_kubernetes_endpointslice_address_target_name",
        ]
    } else {
        [
            "__meta_kubernetes_endpoint_address_target_kind",
            "__meta_kubernetes_endpoint_address_target_name",
        ]
    };
    let from_target = |kind: &str, label: &str| {
        map([
            ("source_labels", strings(&target)),
            ("separator", ";".into()),
            ("regex", format!("{kind};(.*)").into()),
            ("replacement", "${1}".into()),
            ("target_label", label.into()),
        ])
    };
    let copy = |source: &str, label: &str| {
        map([
            ("source_labels", strings(&[source])),
            ("target_label", label.into()),
        ])
    };
    let mut rules = vec![
        from_target("Node", "node"),
        from_target("Pod", "pod"),
        copy("__meta_kubernetes_namespace", "namespace"),
        copy("__meta_kubernetes_service_name", "service"),
        copy("__meta_kubernetes_pod_name", "pod"),
        copy("__meta_kubernetes_pod_container_name", "container"),
    ];
    if ep.filter_running.unwrap_or(true) {
        rules.push(map([
            ("action", "drop".into()),
            ("source_labels", strings(&["__meta_kubernetes_pod_phase"])),
            ("regex", "(Failed|Succeeded)".into()),
        ]));
    }
    rules
}
