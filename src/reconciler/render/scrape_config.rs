//! The job of a ScrapeConfig: `scrapeConfig/<ns>/<name>`, its own scrape settings and the
//! discovery configs it lists, in prometheus-operator v0.94's shape
//! (`generateScrapeConfig`).

use std::collections::BTreeMap;

use kube::ResourceExt;
use serde_yaml_ng::{Mapping, Value};

use super::super::check::Accepted;
use super::super::crd::{KubernetesSdConfig, ScrapeConfig, ScrapeConfigSpec};
use super::super::yaml;
use super::global::name_schemes;
use super::job::{self, EndpointSettings, JobContext, namespace_label_rule, user_rule};
use super::{map, string_map, strings};

/// The resource `excludedFromEnforcement` names ScrapeConfigs by.
const RESOURCE: &str = "scrapeconfigs";

/// Appends the job of an accepted ScrapeConfig to `out`; returns how many (one).
pub(super) fn jobs(accepted: Accepted<ScrapeConfig>, ctx: &JobContext, out: &mut String) -> usize {
    let ctx = JobContext {
        class: accepted.class,
        ..*ctx
    };
    let job = scrape_job(accepted.object, &ctx, accepted.clients);
    yaml::append(out, &Value::Sequence(vec![Value::Mapping(job)]));
    1
}

fn scrape_job(sc: &ScrapeConfig, ctx: &JobContext, clients: Vec<Mapping>) -> Mapping {
    let spec = &sc.spec;
    let ns = sc.namespace().unwrap_or_default();
    let mut job = Mapping::new();
    job.insert(
        "job_name".into(),
        format!("scrapeConfig/{ns}/{}", sc.name_any()).into(),
    );
    // Only when set (unlike monitors, the Prometheus's override alone adds nothing).
    if let Some(honor) = spec.honor_timestamps {
        let overridden = ctx.spec.override_honor_timestamps.unwrap_or(false);
        job.insert("honor_timestamps".into(), (honor && !overridden).into());
    }
    if let Some(track) = spec
        .track_timestamps_staleness
        .filter(|_| ctx.supports(2, 48))
    {
        job.insert("track_timestamps_staleness".into(), track.into());
    }
    if let Some(honor) = spec.honor_labels {
        let overridden = ctx.spec.override_honor_labels.unwrap_or(false);
        job.insert("honor_labels".into(), (honor && !overridden).into());
    }
    if let Some(compression) = spec.enable_compression.filter(|_| ctx.supports(2, 49)) {
        job.insert("enable_compression".into(), compression.into());
    }
    let settings = EndpointSettings {
        honor_labels: None,
        honor_timestamps: None,
        track_timestamps_staleness: None,
        interval: &spec.scrape_interval,
        scrape_timeout: &spec.scrape_timeout,
        path: &spec.metrics_path,
        params: &spec.params,
        scheme: &spec.scheme,
        follow_redirects: None,
        enable_http2: spec.client.enable_http2,
        metric_relabelings: &spec.metric_relabelings,
    };
    let mut clients = clients.into_iter();
    job::endpoint(&mut job, &settings, clients.next().unwrap_or_default(), ctx);
    discovery(spec, &mut clients, ctx, &mut job);
    let mut rules = vec![map([
        ("source_labels", strings(&["job"])),
        ("target_label", "__tmp_prometheus_job_name".into()),
    ])];
    let class_rules = ctx.class.map(|c| c.relabelings.as_slice());
    rules.extend(class_rules.unwrap_or_default().iter().map(user_rule));
    // Set, even empty: the operator writes the rule for any `jobName` given.
    if let Some(name) = &spec.job_name {
        rules.push(map([
            ("target_label", "job".into()),
            ("action", "replace".into()),
            ("replacement", name.as_str().into()),
        ]));
    }
    let enforce = namespace_label_rule(ctx, RESOURCE, sc);
    // As the operator: the namespace label joins the target relabelings only when the user
    // wrote some (it always joins the metric relabelings).
    if !spec.relabelings.is_empty() {
        rules.extend(spec.relabelings.iter().map(user_rule));
        rules.extend(enforce.clone());
    }
    // Sharding, unless the user hashes targets already.
    let hashes = rules
        .iter()
        .any(|r| r.get("action").and_then(Value::as_str) == Some("hashmod"));
    if ctx.shards != 1 && !hashes {
        rules.extend(job::sharding_rules(
            ctx.shards,
            ctx.options.shard_retention_policy,
        ));
    }
    job.insert("relabel_configs".into(), Value::Sequence(rules));
    job::tail(&mut job, &spec.scrape, &settings, enforce, ctx);
    name_schemes(
        spec.name_validation_scheme.as_deref(),
        spec.name_escaping_scheme.as_deref(),
        &|major, minor| ctx.supports(major, minor),
        &mut job,
    );
    job
}

/// The discovery sections, each config with its resolved client entries (taken from
/// `clients` in `ScrapeConfigSpec::clients` order: HTTP, Kubernetes, then Consul).
fn discovery(
    spec: &ScrapeConfigSpec,
    clients: &mut impl Iterator<Item = Mapping>,
    ctx: &JobContext,
    job: &mut Mapping,
) {
    let mut section = |key: &str, configs: Vec<Value>| {
        if !configs.is_empty() {
            job.insert(key.into(), Value::Sequence(configs));
        }
    };
    let empty = BTreeMap::new();
    section(
        "static_configs",
        spec.static_configs
            .iter()
            .map(|c| {
                let targets: Vec<&str> = c.targets.iter().map(String::as_str).collect();
                map([
                    ("targets", strings(&targets)),
                    ("labels", string_map(c.labels.as_ref().unwrap_or(&empty))),
                ])
            })
            .collect(),
    );
    section(
        "file_sd_configs",
        spec.file_sd_configs
            .iter()
            .map(|c| {
                let files: Vec<&str> = c.files.iter().map(String::as_str).collect();
                let mut m = Mapping::new();
                m.insert("files".into(), strings(&files));
                optional(&mut m, "refresh_interval", &c.refresh_interval);
                Value::Mapping(m)
            })
            .collect(),
    );
    let http = spec.http_sd_configs.iter().map(|c| {
        let mut m = clients.next().unwrap_or_default();
        m.insert("url".into(), c.url.as_str().into());
        optional(&mut m, "refresh_interval", &c.refresh_interval);
        redirects_and_http2(&mut m, c.client.follow_redirects, c.client.enable_http2);
        Value::Mapping(m)
    });
    let http = http.collect();
    section("http_sd_configs", http);
    let kubernetes = spec
        .kubernetes_sd_configs
        .iter()
        .map(|c| kubernetes(c, clients.next().unwrap_or_default(), ctx));
    let kubernetes = kubernetes.collect();
    section("kubernetes_sd_configs", kubernetes);
    let consul = spec.consul_sd_configs.iter().map(|c| {
        let mut m = clients.next().unwrap_or_default();
        m.insert("server".into(), c.server.as_str().into());
        for (key, value) in [
            ("path_prefix", &c.path_prefix),
            ("datacenter", &c.datacenter),
            ("namespace", &c.namespace),
            ("partition", &c.partition),
        ] {
            optional(&mut m, key, value);
        }
        if let Some(scheme) = &c.scheme {
            m.insert("scheme".into(), scheme.to_ascii_lowercase().into());
        }
        for (key, values) in [("services", &c.services), ("tags", &c.tags)] {
            if !values.is_empty() {
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                m.insert(key.into(), strings(&values));
            }
        }
        optional(&mut m, "tag_separator", &c.tag_separator);
        if let Some(meta) = c.node_meta.as_ref().filter(|m| !m.is_empty()) {
            m.insert("node_meta".into(), string_map(meta));
        }
        optional(&mut m, "filter", &c.filter);
        optional(&mut m, "health_filter", &c.health_filter);
        if let Some(stale) = c.allow_stale {
            m.insert("allow_stale".into(), stale.into());
        }
        optional(&mut m, "refresh_interval", &c.refresh_interval);
        redirects_and_http2(&mut m, c.client.follow_redirects, c.client.enable_http2);
        Value::Mapping(m)
    });
    let consul = consul.collect();
    section("consul_sd_configs", consul);
    let dns = spec.dns_sd_configs.iter().map(|c| {
        let names: Vec<&str> = c.names.iter().map(String::as_str).collect();
        let mut m = Mapping::new();
        m.insert("names".into(), strings(&names));
        optional(&mut m, "refresh_interval", &c.refresh_interval);
        let gate = match c.type_.as_deref() {
            Some("NS") => (2, 49),
            Some("MX") => (2, 38),
            _ => (0, 0),
        };
        if let Some(kind) = c.type_.as_deref().filter(|_| ctx.supports(gate.0, gate.1)) {
            m.insert("type".into(), kind.into());
        }
        if let Some(port) = c.port {
            m.insert("port".into(), port.into());
        }
        Value::Mapping(m)
    });
    section("dns_sd_configs", dns.collect());
}

/// A Kubernetes SD config: API server, role, client, namespaces, selectors and metadata, each
/// behind the version the operator gates it on.
fn kubernetes(c: &KubernetesSdConfig, client: Mapping, ctx: &JobContext) -> Value {
    let mut m = Mapping::new();
    optional(&mut m, "api_server", &c.api_server);
    let role = c.role.to_ascii_lowercase();
    m.insert("role".into(), role.as_str().into());
    m.extend(client);
    redirects_and_http2(&mut m, c.client.follow_redirects, c.client.enable_http2);
    if let Some(ns) = &c.namespaces {
        let names: Vec<&str> = ns.names.iter().map(String::as_str).collect();
        let mut namespaces = Mapping::new();
        namespaces.insert("names".into(), strings(&names));
        if let Some(own) = ns.own_namespace {
            namespaces.insert("own_namespace".into(), own.into());
        }
        m.insert("namespaces".into(), Value::Mapping(namespaces));
    }
    if !c.selectors.is_empty() && ctx.supports(2, 17) {
        let selectors = c.selectors.iter().map(|s| {
            let mut sel = Mapping::new();
            sel.insert("role".into(), s.role.to_ascii_lowercase().into());
            optional(&mut sel, "label", &s.label);
            optional(&mut sel, "field", &s.field);
            Value::Mapping(sel)
        });
        m.insert("selectors".into(), Value::Sequence(selectors.collect()));
    }
    let gate = match role.as_str() {
        "pod" => Some((2, 35)),
        "endpoints" | "endpointslice" => Some((2, 37)),
        // The operator ignores it for the other roles (with a log line).
        _ => None,
    };
    if let (Some(attach), Some((major, minor))) = (&c.attach_metadata, gate)
        && ctx.supports(major, minor)
    {
        // Go writes the unset pointer as null.
        let node = attach.node.map_or(Value::Null, Value::from);
        m.insert("attach_metadata".into(), map([("node", node)]));
    }
    Value::Mapping(m)
}

/// `follow_redirects` and `enable_http2` of a discovery config, as given (no version gate).
fn redirects_and_http2(m: &mut Mapping, follow: Option<bool>, http2: Option<bool>) {
    if let Some(follow) = follow {
        m.insert("follow_redirects".into(), follow.into());
    }
    if let Some(http2) = http2 {
        m.insert("enable_http2".into(), http2.into());
    }
}

fn optional(m: &mut Mapping, key: &str, value: &Option<String>) {
    if let Some(value) = value {
        m.insert(key.into(), value.as_str().into());
    }
}
