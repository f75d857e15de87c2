//! The checks of ServiceMonitors, PodMonitors and Probes: their fields, endpoints, limits
//! and relabelings, as the operator's `resource_selector.go` checks them.

use super::*;

/// Checks a whole ServiceMonitor against the global scrape interval (milliseconds).
pub fn service_monitor(sm: &ServiceMonitor, global_interval_ms: u64) -> Result<(), String> {
    let spec = &sm.spec;
    monitor(&Monitor {
        unrendered: &spec.unrendered,
        namespace_selector: spec.namespace_selector.as_ref(),
        selector: &spec.selector,
        selector_mechanism: &spec.selector_mechanism,
        scrape: &spec.scrape,
    })?;
    one_of(
        "spec.serviceDiscoveryRole",
        &spec.service_discovery_role,
        DISCOVERY_ROLES,
    )?;
    for (i, ep) in spec.endpoints.iter().enumerate() {
        let scrape = ScrapeEndpoint {
            interval: &ep.interval,
            scrape_timeout: &ep.scrape_timeout,
            scheme: &ep.scheme,
            relabelings: &ep.relabelings,
            metric_relabelings: &ep.metric_relabelings,
        };
        let at = ("endpoints", i);
        endpoint(
            at,
            &ep.unrendered,
            &ep.client,
            true,
            &scrape,
            global_interval_ms,
        )?;
    }
    Ok(())
}

/// Checks a whole PodMonitor against the global scrape interval (milliseconds). Its clients
/// take credentials and TLS material from Secrets and ConfigMaps only, never from files of
/// the Prometheus container (the operator's `SafeTLSConfig`).
pub fn pod_monitor(pm: &PodMonitor, global_interval_ms: u64) -> Result<(), String> {
    let spec = &pm.spec;
    monitor(&Monitor {
        unrendered: &spec.unrendered,
        namespace_selector: spec.namespace_selector.as_ref(),
        selector: &spec.selector,
        selector_mechanism: &spec.selector_mechanism,
        scrape: &spec.scrape,
    })?;
    for (i, ep) in spec.pod_metrics_endpoints.iter().enumerate() {
        let scrape = ScrapeEndpoint {
            interval: &ep.interval,
            scrape_timeout: &ep.scrape_timeout,
            scheme: &ep.scheme,
            relabelings: &ep.relabelings,
            metric_relabelings: &ep.metric_relabelings,
        };
        let at = ("podMetricsEndpoints", i);
        endpoint(
            at,
            &ep.unrendered,
            &ep.client,
            false,
            &scrape,
            global_interval_ms,
        )?;
    }
    Ok(())
}

/// What a ServiceMonitor and a PodMonitor share, as their checks read it.
pub(super) struct Monitor<'a> {
    pub(super) unrendered: &'a BTreeMap<String, Value>,
    pub(super) namespace_selector: Option<&'a NamespaceSelector>,
    pub(super) selector: &'a LabelSelector,
    pub(super) selector_mechanism: &'a Option<String>,
    pub(super) scrape: &'a ScrapeSettings,
}

/// The checks of a monitor's own fields: not rendered, its selectors, its scrape settings.
pub(super) fn monitor(m: &Monitor) -> Result<(), String> {
    first_unrendered("spec", m.unrendered)?;
    if let Some(ns) = m.namespace_selector {
        first_unrendered("spec.namespaceSelector", &ns.unrendered)?;
    }
    select::validate(m.selector).map_err(|e| format!("selector: {e}"))?;
    selector_mechanism(m.selector_mechanism)?;
    scrape_settings(m.scrape)
}

/// The checks of one endpoint, `at` = (`endpoints`, index): fields not rendered, its client
/// (`files`: whether it may name files of the Prometheus container), its scrape settings.
pub(super) fn endpoint(
    (field, i): (&str, usize),
    unrendered: &BTreeMap<String, Value>,
    client: &HttpClient,
    files: bool,
    scrape: &ScrapeEndpoint,
    global_interval_ms: u64,
) -> Result<(), String> {
    let path = format!("spec.{field}[{i}]");
    first_unrendered(&path, unrendered)?;
    http_client(&path, client, files)?;
    relabel_fields(&path, scrape)?;
    scrape_endpoint(scrape, global_interval_ms).map_err(|e| format!("{field}[{i}]: {e}"))
}

/// Checks a whole Probe against the global scrape interval (milliseconds); `utf8_names`:
/// whether the Prometheus version takes any UTF-8 label name (3.0 and later), as the
/// operator checks static labels.
pub fn probe(probe: &Probe, global_interval_ms: u64, utf8_names: bool) -> Result<(), String> {
    let spec = &probe.spec;
    first_unrendered("spec", &spec.unrendered)?;
    first_unrendered("spec.prober", &spec.prober.unrendered)?;
    first_unrendered("spec.targets", &spec.targets.unrendered)?;
    // Fields a ServiceMonitor has and a Probe has not: refused, never dropped.
    for (field, set) in [
        ("bodySizeLimit", spec.scrape.body_size_limit.is_some()),
        ("attachMetadata", spec.scrape.attach_metadata.is_some()),
        ("bearerTokenFile", spec.client.bearer_token_file.is_some()),
        ("proxyUrl", spec.client.proxy_url.is_some()),
        ("noProxy", spec.client.no_proxy.is_some()),
        (
            "proxyFromEnvironment",
            spec.client.proxy_from_environment.is_some(),
        ),
        (
            "proxyConnectHeader",
            spec.client.proxy_connect_header.is_some(),
        ),
    ] {
        if set {
            return Err(format!(
                "spec.{field} is not a field of a Probe{}",
                if field.starts_with("proxy") || field == "noProxy" {
                    " (the prober's proxy is spec.prober.proxyUrl)"
                } else {
                    ""
                }
            ));
        }
    }
    let targets = &spec.targets;
    if targets.static_config.is_none() && targets.ingress.is_none() {
        return Err(
            "at least one of .spec.targets.staticConfig and .spec.targets.ingress is required"
                .into(),
        );
    }
    prober_url(&spec.prober.url).map_err(|e| {
        format!(
            "{:?} url specified in proberSpec is invalid, it should be of the format `hostname` or `hostname:port`: {e}",
            spec.prober.url
        )
    })?;
    proxy(&spec.prober.proxy).map_err(|e| format!("spec.prober.{e}"))?;
    scrape_settings(&spec.scrape)?;
    http_client("spec", &spec.client, false)?;
    let scrape = ScrapeEndpoint {
        interval: &spec.interval,
        scrape_timeout: &spec.scrape_timeout,
        scheme: &spec.prober.scheme,
        relabelings: &[],
        metric_relabelings: &spec.metric_relabelings,
    };
    relabel_fields("spec", &scrape)?;
    scrape_endpoint(&scrape, global_interval_ms)?;
    if let Some(static_config) = &targets.static_config {
        let path = "spec.targets.staticConfig";
        first_unrendered(path, &static_config.unrendered)?;
        for name in static_config.labels.iter().flat_map(|l| l.keys()) {
            if !valid_label_name(name, utf8_names) {
                return Err(format!("{path}.labels: invalid label {name:?}"));
            }
        }
        relabel_rules(
            &format!("{path}.relabelingConfigs"),
            &static_config.relabeling_configs,
        )?;
    }
    if let Some(ingress) = &targets.ingress {
        let path = "spec.targets.ingress";
        first_unrendered(path, &ingress.unrendered)?;
        if let Some(ns) = &ingress.namespace_selector {
            first_unrendered(&format!("{path}.namespaceSelector"), &ns.unrendered)?;
        }
        select::validate(&ingress.selector).map_err(|e| format!("{path}.selector: {e}"))?;
        relabel_rules(
            &format!("{path}.relabelingConfigs"),
            &ingress.relabeling_configs,
        )?;
    }
    Ok(())
}

/// Relabel rules at `path`: fields not rendered, then Prometheus's rules.
pub(super) fn relabel_rules(path: &str, rules: &[RelabelConfig]) -> Result<(), String> {
    for (j, rule) in rules.iter().enumerate() {
        let at = format!("{path}[{j}]");
        first_unrendered(&at, &rule.unrendered)?;
        relabel(rule).map_err(|e| format!("{at}: {e}"))?;
    }
    Ok(())
}

/// A label name as Prometheus takes it: any UTF-8 text from 3.0, else `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(super) fn valid_label_name(name: &str, utf8: bool) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        None => false,
        Some(_) if utf8 => true,
        Some(first) => {
            (first.is_ascii_alphabetic() || first == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
    }
}

/// A prober address: `host` or `host:port` (`[v6]:port`), as the operator checks it (an IP
/// or a DNS name; a port from 1 to 65535).
pub(super) fn prober_url(url: &str) -> Result<(), String> {
    let dns = |h: &str| {
        let label = |l: &str| {
            let mut chars = l.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && l.len() <= 63
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        let h = h.strip_suffix('.').unwrap_or(h);
        !h.is_empty() && h.len() <= 255 && h.split('.').all(label)
    };
    let host_ok = |h: &str| h.parse::<std::net::IpAddr>().is_ok() || dns(h);
    let (host, port) = match url.strip_prefix('[') {
        Some(rest) => match rest.split_once("]:") {
            Some((host, port)) => (host, Some(port)),
            None => (rest.strip_suffix(']').unwrap_or(url), None),
        },
        None => match url.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            _ => (url, None),
        },
    };
    if !host_ok(host) {
        return Err(format!("invalid host: {host:?}"));
    }
    match port {
        Some(port) if !port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Err(format!("invalid port: {port:?}"))
        }
        _ => Ok(()),
    }
}

pub(super) fn selector_mechanism(value: &Option<String>) -> Result<(), String> {
    one_of(
        "spec.selectorMechanism",
        value,
        &["RelabelConfig", "RoleSelector"],
    )
}

/// The settings every scrape object shares: node metadata, native histograms, protocols and
/// the body size limit.
pub(super) fn scrape_settings(scrape: &ScrapeSettings) -> Result<(), String> {
    if let Some(attach) = &scrape.attach_metadata {
        first_unrendered("spec.attachMetadata", &attach.unrendered)?;
    }
    if let Some(factor) = &scrape.native_histogram_min_bucket_factor
        && quantity(factor).is_none()
    {
        return Err(format!(
            "spec.nativeHistogramMinBucketFactor: {factor} is not a quantity such as 1.1 or 1100m"
        ));
    }
    let protocols = scrape.scrape_protocols.iter();
    for (i, protocol) in protocols
        .chain(&scrape.fallback_scrape_protocol)
        .enumerate()
    {
        if !SCRAPE_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(format!(
                "scrape protocol {protocol:?} (entry {i}) is not one of {}",
                SCRAPE_PROTOCOLS.join(", ")
            ));
        }
    }
    if let Some(size) = &scrape.body_size_limit
        && !is_byte_size(size)
    {
        return Err(format!(
            "bodySizeLimit {size:?} is not a size such as 10MB, 512KiB or 0"
        ));
    }
    Ok(())
}

/// What the checks of a scrape endpoint read, from a ServiceMonitor or PodMonitor.
pub(super) struct ScrapeEndpoint<'a> {
    pub(super) interval: &'a Option<String>,
    pub(super) scrape_timeout: &'a Option<String>,
    pub(super) scheme: &'a Option<String>,
    pub(super) relabelings: &'a [RelabelConfig],
    pub(super) metric_relabelings: &'a [RelabelConfig],
}

/// The operator's rules for an endpoint: the timeout within the interval, an HTTP scheme,
/// valid relabelings.
pub(super) fn scrape_endpoint(ep: &ScrapeEndpoint, global_interval_ms: u64) -> Result<(), String> {
    let interval = match ep.interval {
        Some(i) => duration_ms(i).map_err(|e| format!("interval: {e}"))?,
        None => global_interval_ms,
    };
    if let Some(t) = ep.scrape_timeout {
        let timeout = duration_ms(t).map_err(|e| format!("scrapeTimeout: {e}"))?;
        if timeout > interval {
            return Err(format!(
                "scrapeTimeout {t} is greater than the scrape interval {}",
                ep.interval.as_deref().unwrap_or("(global)")
            ));
        }
    }
    if let Some(scheme) = ep.scheme
        && !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
    {
        return Err(format!("scheme {scheme:?} is not http or https"));
    }
    for (what, rules) in [
        ("relabelings", ep.relabelings),
        ("metricRelabelings", ep.metric_relabelings),
    ] {
        for (j, rule) in rules.iter().enumerate() {
            relabel(rule).map_err(|e| format!("{what}[{j}]: {e}"))?;
        }
    }
    Ok(())
}

/// Fields not rendered in an endpoint's relabelings (`path` names the endpoint).
pub(super) fn relabel_fields(path: &str, ep: &ScrapeEndpoint) -> Result<(), String> {
    for (what, rules) in [
        ("relabelings", ep.relabelings),
        ("metricRelabelings", ep.metric_relabelings),
    ] {
        for (j, rule) in rules.iter().enumerate() {
            first_unrendered(&format!("{path}.{what}[{j}]"), &rule.unrendered)?;
        }
    }
    Ok(())
}
