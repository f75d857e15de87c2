//! Validation of what users write: Prometheus durations, relabel rules and whole
//! ServiceMonitors. A ServiceMonitor that fails is left out of the config with the reason
//! (the Warning Event's message); the rest of the config is still written.
//!
//! **No silent drops.** A field this reconciler does not render is refused, never ignored: a
//! ServiceMonitor using one (for example `scrapeClass`, or a misspelled field) is left out
//! with a Warning Event naming the field, since scraping without it would be wrong while
//! looking right. A Prometheus that sets a field shaping the generated
//! config ([`PROMETHEUS_UNRENDERED`]) gets no config at all (its Secret keeps the last good
//! one) and a condition naming the field. Fields that do not change the config file (replicas,
//! storage, resources, ...) are not its business.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

use super::crd::{
    Authorization, BasicAuth, HttpClient, NamespaceSelector, OAuth2, PodMonitor, Probe, Prometheus,
    PrometheusSpec, ProxyConfig, RelabelConfig, ScrapeClass, ScrapeSettings, SecretOrConfigMap,
    ServiceMonitor, TlsConfig,
};
use super::select;

mod scrape_config;
pub use scrape_config::{Supports, scrape_config};

/// `Prometheus` spec fields that prometheus-operator v0.94 reads when it generates the config
/// file, and that this reconciler does not render yet. Setting any of them refuses the
/// Prometheus (found by reading the operator's `pkg/prometheus/promcfg.go`).
pub const PROMETHEUS_UNRENDERED: &[&str] = &["apiserverConfig", "otlp", "tracingConfig"];

/// The service-discovery kinds of a v0.94 ScrapeConfig that this reconciler does not render:
/// a ScrapeConfig using one is left out alone, with a Warning Event naming the field. A test
/// holds the list and the rendered fields to the upstream CRD.
pub const SCRAPE_CONFIG_UNRENDERED: &[&str] = &[
    "azureSDConfigs",
    "digitalOceanSDConfigs",
    "dockerSDConfigs",
    "dockerSwarmSDConfigs",
    "ec2SDConfigs",
    "eurekaSDConfigs",
    "gceSDConfigs",
    "hetznerSDConfigs",
    "ionosSDConfigs",
    "kumaSDConfigs",
    "lightSailSDConfigs",
    "linodeSDConfigs",
    "nomadSDConfigs",
    "openstackSDConfigs",
    "ovhcloudSDConfigs",
    "puppetDBSDConfigs",
    "scalewaySDConfigs",
];

/// The other `Prometheus` spec fields of prometheus-operator v0.94: they shape the Pod, the
/// command line or the rules, not the config file, so they are not this reconciler's
/// business. A field in neither list nor rendered is unknown (a misspelling, or a newer API)
/// and refuses the Prometheus, so it is never silently ignored. A test holds the lists to
/// the upstream CRD.
pub const PROMETHEUS_IGNORED: &[&str] = &[
    "additionalArgs",
    "affinity",
    "allowOverlappingBlocks",
    "automountServiceAccountToken",
    "baseImage",
    "configMaps",
    "containers",
    "disableCompaction",
    "dnsConfig",
    "dnsPolicy",
    "enableAdminAPI",
    "enableOTLPReceiver",
    "enableRemoteWriteReceiver",
    "enableServiceLinks",
    "externalUrl",
    "hostAliases",
    "hostNetwork",
    "hostUsers",
    "image",
    "imagePullPolicy",
    "imagePullSecrets",
    "initContainers",
    "listenLocal",
    "logFormat",
    "logLevel",
    "maximumStartupDurationSeconds",
    "minReadySeconds",
    "nodeSelector",
    "persistentVolumeClaimRetentionPolicy",
    "podManagementPolicy",
    "podMetadata",
    "portName",
    "priorityClassName",
    "query",
    "reloadStrategy",
    "remoteWriteReceiverMessageVersions",
    "replicas",
    "resources",
    "routePrefix",
    "rules",
    "schedulerName",
    "secrets",
    "securityContext",
    "serviceAccountName",
    "serviceName",
    "sha",
    "shardRetentionPolicy",
    "shardingStrategy",
    "storage",
    "tag",
    "terminationGracePeriodSeconds",
    "thanos",
    "tolerations",
    "topologySpreadConstraints",
    "updateStrategy",
    "volumeMounts",
    "volumes",
    "walCompression",
    "web",
];

/// The TLS versions Prometheus accepts.
pub const TLS_VERSIONS: &[&str] = &["TLS10", "TLS11", "TLS12", "TLS13"];

/// The scrape protocols Prometheus negotiates.
pub const SCRAPE_PROTOCOLS: &[&str] = &[
    "PrometheusProto",
    "OpenMetricsText0.0.1",
    "OpenMetricsText1.0.0",
    "PrometheusText0.0.4",
    "PrometheusText1.0.0",
];

/// A size as the CRD's pattern allows it (`0`, `10MB`, `1.5GiB`).
fn is_byte_size(s: &str) -> bool {
    use std::sync::OnceLock;
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"^(0|([0-9]*[.])?[0-9]+((K|M|G|T|E|P)i?)?B)$").expect("valid regex")
    })
    .is_match(s)
}

/// Whether a field's value says anything: `null`, `false`, `""`, `{}` and `[]` are the same as
/// leaving it out; anything else (including `0`) is a setting.
fn is_set(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Number(_) => true,
    }
}

/// The first field of `unrendered` that is set, as `path.field`.
fn first_unrendered(path: &str, unrendered: &BTreeMap<String, Value>) -> Result<(), String> {
    match unrendered.iter().find(|(_, v)| is_set(v)) {
        Some((field, _)) => Err(format!(
            "{path}.{field} is not rendered by promreload-reconciler; refused rather than dropped"
        )),
        None => Ok(()),
    }
}

/// Checks that a Prometheus sets no field that shapes the config and is not rendered, and
/// that the rendered ones are valid.
pub fn prometheus(p: &Prometheus) -> Result<(), String> {
    for protocol in &p.spec.scrape_protocols {
        if !SCRAPE_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(format!(
                "spec.scrapeProtocols: {protocol:?} is not one of {}",
                SCRAPE_PROTOCOLS.join(", ")
            ));
        }
    }
    for (field, size) in [
        ("bodySizeLimit", &p.spec.body_size_limit),
        ("enforcedBodySizeLimit", &p.spec.enforced_body_size_limit),
    ] {
        if let Some(size) = size.as_deref().filter(|s| !s.is_empty())
            && !is_byte_size(size)
        {
            return Err(format!(
                "spec.{field}: {size:?} is not a size such as 10MB or 512KiB"
            ));
        }
    }
    one_of(
        "spec.serviceDiscoveryRole",
        &p.spec.service_discovery_role,
        DISCOVERY_ROLES,
    )?;
    scrape_classes(&p.spec.scrape_classes)?;
    storage_settings(&p.spec)?;
    outputs(&p.spec)?;
    if let Some(field) = p.spec.unrendered.keys().find(|f| {
        ![PROMETHEUS_UNRENDERED, PROMETHEUS_IGNORED]
            .iter()
            .any(|list| list.contains(&f.as_str()))
    }) {
        return Err(format!(
            "spec.{field} is not a field of the monitoring.coreos.com/v1 Prometheus \
             (prometheus-operator v0.94): a misspelling, or a newer API; refused rather than ignored"
        ));
    }
    let set = PROMETHEUS_UNRENDERED
        .iter()
        .find(|f| p.spec.unrendered.get(**f).is_some_and(is_set));
    match set {
        Some(field) => Err(format!(
            "spec.{field} shapes the generated config but is not rendered by \
             promreload-reconciler; no config is generated rather than one without it"
        )),
        None => Ok(()),
    }
}

/// `nameValidationScheme` and `nameEscapingScheme` (of a Prometheus or a ScrapeConfig): the
/// CRD's values.
fn name_schemes(validation: &Option<String>, escaping: &Option<String>) -> Result<(), String> {
    one_of("spec.nameValidationScheme", validation, &["UTF8", "Legacy"])?;
    one_of(
        "spec.nameEscapingScheme",
        escaping,
        &["AllowUTF8", "Underscores", "Dots", "Values"],
    )
}

/// The global, runtime and storage settings: enums, durations and ranges as the CRD and the
/// operator check them.
fn storage_settings(spec: &PrometheusSpec) -> Result<(), String> {
    name_schemes(&spec.name_validation_scheme, &spec.name_escaping_scheme)?;
    if let Some(offset) = &spec.rule_query_offset {
        duration_ms(offset).map_err(|e| format!("spec.ruleQueryOffset: {e}"))?;
    }
    if let Some(runtime) = &spec.runtime {
        first_unrendered("spec.runtime", &runtime.unrendered)?;
    }
    if let Some(exemplars) = &spec.exemplars {
        first_unrendered("spec.exemplars", &exemplars.unrendered)?;
    }
    if let Some(percentage) = &spec.retention_percentage {
        match quantity(percentage) {
            Some(v) if (0.0..=100.0).contains(&v) => {}
            _ => {
                return Err(format!(
                    "spec.retentionPercentage must be a number from 0 to 100, not {percentage}"
                ));
            }
        }
    }
    let Some(tsdb) = &spec.tsdb else {
        return Ok(());
    };
    first_unrendered("spec.tsdb", &tsdb.unrendered)?;
    if let Some(window) = &tsdb.out_of_order_time_window {
        duration_ms(window).map_err(|e| format!("spec.tsdb.outOfOrderTimeWindow: {e}"))?;
    }
    if let Some(threshold) = &tsdb.stale_series_compaction_threshold {
        match quantity(threshold) {
            Some(v) if (0.0..=1.0).contains(&v) => {}
            _ => {
                return Err(format!(
                    "spec.tsdb.staleSeriesCompactionThreshold must be a number from 0 to 1, \
                     not {threshold}"
                ));
            }
        }
    }
    if let Some(encoding) = &tsdb.chunk_encoding {
        first_unrendered("spec.tsdb.chunkEncoding", &encoding.unrendered)?;
        one_of(
            "spec.tsdb.chunkEncoding.floats",
            &encoding.floats,
            &["Xor", "Xor2"],
        )?;
        if encoding.floats.as_deref() == Some("Xor")
            && spec.enable_features.iter().any(|f| f == "st-storage")
        {
            return Err("spec.tsdb.chunkEncoding.floats \"Xor\" cannot go with the \
                        st-storage feature (XOR chunks do not store start timestamps)"
                .into());
        }
    }
    Ok(())
}

/// Relabel actions Prometheus 2.42 understands (lower case).
pub const ACTIONS: &[&str] = &[
    "replace",
    "keep",
    "drop",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "uppercase",
    "keepequal",
    "dropequal",
];

/// Parses a Prometheus duration (`30s`, `1m30s`, `1h`, `500ms`, `0`) into milliseconds.
pub fn duration_ms(s: &str) -> Result<u64, String> {
    const UNITS: &[(&str, u64)] = &[
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("ms", 1),
        ("m", 60_000),
        ("s", 1_000),
    ];
    if s == "0" {
        return Ok(0);
    }
    let bad = || format!("{s:?} is not a Prometheus duration (such as 30s, 1m30s)");
    if s.is_empty() {
        return Err(bad());
    }
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_unit = u64::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, factor) = UNITS
            .iter()
            .find(|(u, _)| rest.starts_with(u) && !(*u == "m" && rest.starts_with("ms")))
            .ok_or_else(bad)?;
        // Units must go from largest to smallest, each at most once.
        if *factor >= last_unit {
            return Err(bad());
        }
        last_unit = *factor;
        total = n
            .checked_mul(*factor)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        rest = &rest[unit.len()..];
    }
    Ok(total)
}

/// Checks one relabel rule.
pub fn relabel(rule: &RelabelConfig) -> Result<(), String> {
    let action = rule
        .action
        .as_deref()
        .unwrap_or("replace")
        .to_ascii_lowercase();
    if !ACTIONS.contains(&action.as_str()) {
        return Err(format!(
            "unknown relabel action {:?} (one of {})",
            rule.action.as_deref().unwrap_or_default(),
            ACTIONS.join(", ")
        ));
    }
    if let Some(re) = &rule.regex {
        check_regex(re)?;
    }
    let needs_target = matches!(
        action.as_str(),
        "replace" | "hashmod" | "lowercase" | "uppercase" | "keepequal" | "dropequal"
    );
    if needs_target && rule.target_label.as_deref().is_none_or(str::is_empty) {
        return Err(format!("relabel action {action} needs targetLabel"));
    }
    if action == "hashmod" && rule.modulus.unwrap_or(0) == 0 {
        return Err("relabel action hashmod needs a modulus greater than 0".into());
    }
    Ok(())
}

/// Compiles a relabel regex as Prometheus anchors it. Valid ones are remembered (at most
/// 4,096), since thousands of ServiceMonitors tend to share a handful of regexes and a
/// compile costs tens of microseconds.
fn check_regex(re: &str) -> Result<(), String> {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static VALID: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let valid = VALID.get_or_init(Mutex::default);
    if valid.lock().unwrap_or_else(|e| e.into_inner()).contains(re) {
        return Ok(());
    }
    regex::Regex::new(&format!("^(?:{re})$"))
        .map_err(|e| format!("invalid regex {re:?}: {}", first_line(&e.to_string())))?;
    let mut valid = valid.lock().unwrap_or_else(|e| e.into_inner());
    if valid.len() < 4096 {
        valid.insert(re.to_string());
    }
    Ok(())
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}

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
struct Monitor<'a> {
    unrendered: &'a BTreeMap<String, Value>,
    namespace_selector: Option<&'a NamespaceSelector>,
    selector: &'a LabelSelector,
    selector_mechanism: &'a Option<String>,
    scrape: &'a ScrapeSettings,
}

/// The checks of a monitor's own fields: not rendered, its selectors, its scrape settings.
fn monitor(m: &Monitor) -> Result<(), String> {
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
fn endpoint(
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
fn relabel_rules(path: &str, rules: &[RelabelConfig]) -> Result<(), String> {
    for (j, rule) in rules.iter().enumerate() {
        let at = format!("{path}[{j}]");
        first_unrendered(&at, &rule.unrendered)?;
        relabel(rule).map_err(|e| format!("{at}: {e}"))?;
    }
    Ok(())
}

/// A label name as Prometheus takes it: any UTF-8 text from 3.0, else `[a-zA-Z_][a-zA-Z0-9_]*`.
fn valid_label_name(name: &str, utf8: bool) -> bool {
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
fn prober_url(url: &str) -> Result<(), String> {
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

fn selector_mechanism(value: &Option<String>) -> Result<(), String> {
    one_of(
        "spec.selectorMechanism",
        value,
        &["RelabelConfig", "RoleSelector"],
    )
}

/// The settings every scrape object shares: node metadata, native histograms, protocols and
/// the body size limit.
fn scrape_settings(scrape: &ScrapeSettings) -> Result<(), String> {
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

/// The one check of an [`HttpClient`] (`path` names it): fields not rendered, the
/// operator's rules (one authentication method at most, a complete `oauth2`, a consistent
/// proxy and TLS), and, where `files` is false, no file of the Prometheus container.
pub fn http_client(path: &str, client: &HttpClient, files: bool) -> Result<(), String> {
    if let Some(basic) = &client.basic_auth {
        first_unrendered(&format!("{path}.basicAuth"), &basic.unrendered)?;
    }
    if let Some(authz) = &client.authorization {
        first_unrendered(&format!("{path}.authorization"), &authz.unrendered)?;
    }
    if !files && is_text(&client.bearer_token_file) {
        return Err(format!(
            "{path}.bearerTokenFile: files are not allowed here"
        ));
    }
    client_rules(client).map_err(|e| format!("{path}.{e}"))?;
    if let Some(tls) = &client.tls_config {
        tls_config(&format!("{path}.tlsConfig"), tls, files)?;
    }
    Ok(())
}

/// The operator's rules for a client's settings: one authentication method at most, a
/// complete `oauth2`, and a consistent proxy. The error starts with the field.
fn client_rules(client: &HttpClient) -> Result<(), String> {
    let methods = [
        ("authorization", client.authorization.is_some()),
        ("basicAuth", client.basic_auth.is_some()),
        ("bearerTokenSecret", client.bearer_token_secret.is_some()),
        ("oauth2", client.oauth2.is_some()),
    ];
    let set: Vec<&str> = methods.iter().filter(|m| m.1).map(|m| m.0).collect();
    if let [first, second, ..] = set[..] {
        return Err(format!(
            "{first}: {first} and {second} cannot be configured at the same time"
        ));
    }
    if client
        .authorization
        .as_ref()
        .is_some_and(|a| a.credentials.is_none())
    {
        return Err("authorization.credentials: must be set".into());
    }
    if let Some(oauth2) = &client.oauth2 {
        oauth2_rules(oauth2)?;
    }
    proxy(&client.proxy())
}

/// The operator's rules for `oauth2` (errors start with `oauth2.`).
fn oauth2_rules(oauth2: &OAuth2) -> Result<(), String> {
    first_unrendered("oauth2", &oauth2.unrendered)?;
    if oauth2.token_url.is_empty() {
        return Err("oauth2.tokenUrl: must be set".into());
    }
    if oauth2.client_id.is_empty() {
        return Err("oauth2.clientId: must be set".into());
    }
    either("oauth2.clientId", &oauth2.client_id)?;
    if let Some(tls) = &oauth2.tls_config {
        tls_config("oauth2.tlsConfig", tls, false)?;
    }
    proxy(&oauth2.proxy).map_err(|e| format!("oauth2.{e}"))
}

/// The client rules of a remote write or read, or an Alertmanager (`path` names it): one
/// authentication method (the operator checks fewer pairs and writes a config Prometheus
/// refuses to load, for example `oauth2` with `bearerToken`; this refuses it up front), an `authorization` with a Secret or a file (not both, and not of
/// type `Basic`), and consistent OAuth 2.0, TLS and proxy settings.
fn remote_client(path: &str, client: &RemoteClient) -> Result<(), String> {
    let set: Vec<&str> = client.methods.iter().filter(|m| m.1).map(|m| m.0).collect();
    if let [first, second, ..] = set[..] {
        return Err(format!(
            "{path}: {first} and {second} cannot be set at the same time"
        ));
    }
    if let Some(basic) = client.basic_auth {
        first_unrendered(&format!("{path}.basicAuth"), &basic.unrendered)?;
    }
    if let Some(authz) = client.authorization {
        first_unrendered(&format!("{path}.authorization"), &authz.unrendered)?;
        let file = authz
            .credentials_file
            .as_deref()
            .is_some_and(|f| !f.is_empty());
        if authz.credentials.is_some() && file {
            return Err(format!(
                "{path}.authorization: cannot specify both credentials and credentialsFile"
            ));
        }
        if authz.credentials.is_some()
            && authz
                .type_
                .as_deref()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("basic"))
        {
            return Err(format!(
                "{path}.authorization: type cannot be \"Basic\", use basicAuth instead"
            ));
        }
    }
    if let Some(oauth2) = client.oauth2 {
        oauth2_rules(oauth2).map_err(|e| format!("{path}.{e}"))?;
    }
    if let Some(tls) = client.tls {
        tls_config(&format!("{path}.tlsConfig"), tls, true)?;
    }
    proxy(client.proxy).map_err(|e| format!("{path}.{e}"))
}

fn is_text(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.is_empty())
}

/// What [`remote_client`] checks, borrowed from a remote write or read or an Alertmanager.
struct RemoteClient<'a> {
    methods: Vec<(&'static str, bool)>,
    basic_auth: Option<&'a BasicAuth>,
    authorization: Option<&'a Authorization>,
    oauth2: Option<&'a OAuth2>,
    tls: Option<&'a TlsConfig>,
    proxy: &'a ProxyConfig,
}

/// The operator's rules for `remoteWrite`, `remoteRead` and `alerting`.
fn outputs(spec: &PrometheusSpec) -> Result<(), String> {
    for (i, rw) in spec.remote_write.iter().enumerate() {
        let path = format!("spec.remoteWrite[{i}]");
        first_unrendered(&path, &rw.unrendered)?;
        if rw.url.is_empty() {
            return Err(format!("{path}.url: must be set"));
        }
        one_of(
            &format!("{path}.messageVersion"),
            &rw.message_version,
            &["V1.0", "V2.0"],
        )?;
        remote_client(
            &path,
            &RemoteClient {
                methods: vec![
                    ("basicAuth", rw.basic_auth.is_some()),
                    ("oauth2", rw.oauth2.is_some()),
                    ("authorization", rw.authorization.is_some()),
                    ("bearerToken", is_text(&rw.bearer_token)),
                    ("bearerTokenFile", is_text(&rw.bearer_token_file)),
                ],
                basic_auth: rw.basic_auth.as_ref(),
                authorization: rw.authorization.as_ref(),
                oauth2: rw.oauth2.as_ref(),
                tls: rw.tls_config.as_ref(),
                proxy: &rw.proxy,
            },
        )?;
        for (j, rule) in rw.write_relabel_configs.iter().enumerate() {
            let at = format!("{path}.writeRelabelConfigs[{j}]");
            first_unrendered(&at, &rule.unrendered)?;
            relabel(rule).map_err(|e| format!("{at}: {e}"))?;
        }
        if let Some(queue) = &rw.queue_config {
            first_unrendered(&format!("{path}.queueConfig"), &queue.unrendered)?;
        }
        if let Some(meta) = &rw.metadata_config {
            first_unrendered(&format!("{path}.metadataConfig"), &meta.unrendered)?;
        }
    }
    for (i, rr) in spec.remote_read.iter().enumerate() {
        let path = format!("spec.remoteRead[{i}]");
        first_unrendered(&path, &rr.unrendered)?;
        if rr.url.is_empty() {
            return Err(format!("{path}.url: must be set"));
        }
        remote_client(
            &path,
            &RemoteClient {
                methods: vec![
                    ("basicAuth", rr.basic_auth.is_some()),
                    ("oauth2", rr.oauth2.is_some()),
                    ("authorization", rr.authorization.is_some()),
                    ("bearerToken", is_text(&rr.bearer_token)),
                    ("bearerTokenFile", is_text(&rr.bearer_token_file)),
                ],
                basic_auth: rr.basic_auth.as_ref(),
                authorization: rr.authorization.as_ref(),
                oauth2: rr.oauth2.as_ref(),
                tls: rr.tls_config.as_ref(),
                proxy: &rr.proxy,
            },
        )?;
    }
    let Some(alerting) = &spec.alerting else {
        return Ok(());
    };
    first_unrendered("spec.alerting", &alerting.unrendered)?;
    for (i, am) in alerting.alertmanagers.iter().enumerate() {
        let path = format!("spec.alerting.alertmanagers[{i}]");
        first_unrendered(&path, &am.unrendered)?;
        if am.name.is_empty() {
            return Err(format!("{path}.name: must be set"));
        }
        let authorization = am.authorization.as_ref().map(|a| Authorization {
            type_: a.type_.clone(),
            credentials: a.credentials.clone(),
            credentials_file: None,
            unrendered: a.unrendered.clone(),
        });
        remote_client(
            &path,
            &RemoteClient {
                methods: vec![
                    (
                        "bearerTokenFile",
                        am.bearer_token_file
                            .as_deref()
                            .is_some_and(|f| !f.is_empty()),
                    ),
                    ("basicAuth", am.basic_auth.is_some()),
                    ("authorization", am.authorization.is_some()),
                ],
                basic_auth: am.basic_auth.as_ref(),
                authorization: authorization.as_ref(),
                oauth2: None,
                tls: am.tls_config.as_ref(),
                proxy: &am.proxy,
            },
        )?;
        if let Some(version) = &am.api_version
            && !["V1", "V2"].contains(&version.to_ascii_uppercase().as_str())
        {
            return Err(format!(
                "{path}.apiVersion: {version:?} is not one of V1, V2"
            ));
        }
        for (what, rules) in [
            ("relabelings", &am.relabelings),
            ("alertRelabelings", &am.alert_relabelings),
        ] {
            for (j, rule) in rules.iter().enumerate() {
                let at = format!("{path}.{what}[{j}]");
                first_unrendered(&at, &rule.unrendered)?;
                relabel(rule).map_err(|e| format!("{at}: {e}"))?;
            }
        }
    }
    Ok(())
}

/// The operator's rules for `scrapeClasses`: named, one default at most, valid relabelings,
/// TLS and authorization from files (material from Secrets is not rendered for classes).
fn scrape_classes(classes: &[ScrapeClass]) -> Result<(), String> {
    let mut default = None;
    for (i, class) in classes.iter().enumerate() {
        let path = format!("spec.scrapeClasses[{i}]");
        first_unrendered(&path, &class.unrendered)?;
        if class.name.is_empty() {
            return Err(format!("{path}.name: must be set"));
        }
        if class.default.unwrap_or(false) {
            if let Some(first) = default {
                return Err(format!(
                    "{path}: multiple default scrape classes defined ({first} and {})",
                    class.name
                ));
            }
            default = Some(&class.name);
        }
        for (what, rules) in [
            ("relabelings", &class.relabelings),
            ("metricRelabelings", &class.metric_relabelings),
        ] {
            for (j, rule) in rules.iter().enumerate() {
                let at = format!("{path}.{what}[{j}]");
                first_unrendered(&at, &rule.unrendered)?;
                relabel(rule).map_err(|e| format!("{at}: {e}"))?;
            }
        }
        if let Some(tls) = &class.tls_config {
            let at = format!("{path}.tlsConfig");
            for (field, set) in [
                ("ca", tls.ca.as_ref().is_some_and(|s| !s.is_empty())),
                ("cert", tls.cert.as_ref().is_some_and(|s| !s.is_empty())),
                ("keySecret", tls.key_secret.is_some()),
            ] {
                if set {
                    return Err(format!(
                        "{at}.{field} is not rendered by promreload-reconciler for scrape \
                         classes (use the file variant); no config is generated rather than \
                         one without it"
                    ));
                }
            }
            tls_config(&at, tls, true)?;
        }
        if let Some(authz) = &class.authorization {
            first_unrendered(&format!("{path}.authorization"), &authz.unrendered)?;
            if authz
                .type_
                .as_deref()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("basic"))
            {
                return Err(format!(
                    "{path}.authorization: type cannot be \"Basic\", use basicAuth instead"
                ));
            }
        }
        if let Some(attach) = &class.attach_metadata {
            first_unrendered(&format!("{path}.attachMetadata"), &attach.unrendered)?;
        }
        one_of(
            &format!("{path}.fallbackScrapeProtocol"),
            &class.fallback_scrape_protocol,
            SCRAPE_PROTOCOLS,
        )?;
    }
    Ok(())
}

/// For a Prometheus with `arbitraryFSAccessThroughSMs.deny`: an endpoint must not read files
/// of the Prometheus container (`bearerTokenFile`, TLS files).
pub fn no_files(client: &HttpClient) -> Result<(), String> {
    let set = |f: &Option<String>| f.as_deref().is_some_and(|f| !f.is_empty());
    if set(&client.bearer_token_file) {
        return Err(
            "bearerTokenFile reads a file of the Prometheus container, which \
             arbitraryFSAccessThroughSMs.deny prohibits"
                .into(),
        );
    }
    if let Some(tls) = &client.tls_config
        && (set(&tls.ca_file) || set(&tls.cert_file) || set(&tls.key_file))
    {
        return Err("tlsConfig reads files of the Prometheus container, which \
             arbitraryFSAccessThroughSMs.deny prohibits"
            .into());
    }
    Ok(())
}

/// The discovery roles of ServiceMonitors.
pub const DISCOVERY_ROLES: &[&str] = &["Endpoints", "EndpointSlice"];

/// An optional enumerated field must hold one of `allowed`.
pub fn one_of(path: &str, value: &Option<String>, allowed: &[&str]) -> Result<(), String> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(format!(
            "{path}: {v:?} is not one of {}",
            allowed.join(", ")
        )),
        _ => Ok(()),
    }
}

/// A Kubernetes quantity (`1.1`, `1100m`, `2k`, `1Ki`) as a number, as the operator's
/// `AsApproximateFloat64` reads it; `None` when it is not one.
pub fn quantity(value: &Value) -> Option<f64> {
    let text = match value {
        Value::Number(n) => return n.as_f64(),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => {
            let e: i32 = exponent.strip_prefix(['e', 'E'])?.parse().ok()?;
            10f64.powi(e)
        }
    };
    Some(number * scale)
}

/// A Secret-or-ConfigMap reference must not name both.
fn either(path: &str, sel: &SecretOrConfigMap) -> Result<(), String> {
    if sel.secret.is_some() && sel.config_map.is_some() {
        return Err(format!("{path}: cannot specify both secret and configMap"));
    }
    Ok(())
}

/// The operator's proxy rules (`ProxyConfig.Validate`).
fn proxy(config: &ProxyConfig) -> Result<(), String> {
    let from_env = config.proxy_from_environment.unwrap_or(false);
    let has_url = config.proxy_url.as_deref().is_some_and(|u| !u.is_empty());
    let has_no_proxy = config.no_proxy.as_deref().is_some_and(|n| !n.is_empty());
    let headers = config.proxy_connect_header.as_ref();
    if headers.is_some_and(|h| !h.is_empty()) && !from_env && !has_url {
        return Err(
            "proxyConnectHeader: needs proxyUrl or proxyFromEnvironment to be configured".into(),
        );
    }
    if from_env && has_url {
        return Err("proxyUrl: cannot be configured together with proxyFromEnvironment".into());
    }
    if from_env && has_no_proxy {
        return Err("noProxy: cannot be configured together with proxyFromEnvironment".into());
    }
    if !has_url && has_no_proxy {
        return Err("noProxy: needs proxyUrl to be configured".into());
    }
    for (name, selectors) in headers.into_iter().flatten() {
        if selectors.is_empty() {
            return Err(format!("proxyConnectHeader[{name}]: must not be empty"));
        }
        if let Some(i) = selectors
            .iter()
            .position(|s| s.name.is_empty() && s.key.is_empty())
        {
            return Err(format!(
                "proxyConnectHeader[{name}][{i}]: selector must be defined"
            ));
        }
    }
    Ok(())
}

/// The operator's TLS rules (`TLSConfig.Validate`); `files`: whether the file variants are
/// allowed (not inside `oauth2`).
fn tls_config(path: &str, tls: &TlsConfig, files: bool) -> Result<(), String> {
    first_unrendered(path, &tls.unrendered)?;
    let set = |sel: &Option<SecretOrConfigMap>| sel.as_ref().is_some_and(|s| !s.is_empty());
    let file = |f: &Option<String>| f.as_deref().is_some_and(|f| !f.is_empty());
    for (field, sel) in [("ca", &tls.ca), ("cert", &tls.cert)] {
        if let Some(sel) = sel {
            either(&format!("{path}.{field}"), sel)?;
        }
    }
    if let (Some(min), Some(max)) = (&tls.min_version, &tls.max_version)
        && max < min
    {
        return Err(format!(
            "{path}: maxVersion {max} is lower than minVersion {min}"
        ));
    }
    for (field, value) in [
        ("minVersion", &tls.min_version),
        ("maxVersion", &tls.max_version),
    ] {
        if let Some(v) = value
            && !TLS_VERSIONS.contains(&v.as_str())
        {
            return Err(format!(
                "{path}.{field}: {v:?} is not one of {}",
                TLS_VERSIONS.join(", ")
            ));
        }
    }
    if !files
        && let Some(field) = [
            ("caFile", &tls.ca_file),
            ("certFile", &tls.cert_file),
            ("keyFile", &tls.key_file),
        ]
        .into_iter()
        .find(|(_, f)| file(f))
        .map(|(name, _)| name)
    {
        return Err(format!("{path}.{field}: files are not allowed here"));
    }
    if set(&tls.ca) && file(&tls.ca_file) {
        return Err(format!("{path}: cannot specify both caFile and ca"));
    }
    if set(&tls.cert) && file(&tls.cert_file) {
        return Err(format!("{path}: cannot specify both certFile and cert"));
    }
    if tls.key_secret.is_some() && file(&tls.key_file) {
        return Err(format!("{path}: cannot specify both keyFile and keySecret"));
    }
    let has_cert = set(&tls.cert) || file(&tls.cert_file);
    let has_key = tls.key_secret.is_some() || file(&tls.key_file);
    match (has_cert, has_key) {
        (true, false) => Err(format!("{path}: a client cert needs a client key")),
        (false, true) => Err(format!("{path}: a client key needs a client cert")),
        _ => Ok(()),
    }
}

/// What the checks of a scrape endpoint read, from a ServiceMonitor or PodMonitor.
struct ScrapeEndpoint<'a> {
    interval: &'a Option<String>,
    scrape_timeout: &'a Option<String>,
    scheme: &'a Option<String>,
    relabelings: &'a [RelabelConfig],
    metric_relabelings: &'a [RelabelConfig],
}

/// The operator's rules for an endpoint: the timeout within the interval, an HTTP scheme,
/// valid relabelings.
fn scrape_endpoint(ep: &ScrapeEndpoint, global_interval_ms: u64) -> Result<(), String> {
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
fn relabel_fields(path: &str, ep: &ScrapeEndpoint) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_ms("30s"), Ok(30_000));
        assert_eq!(duration_ms("1m30s"), Ok(90_000));
        assert_eq!(duration_ms("500ms"), Ok(500));
        assert_eq!(duration_ms("1h"), Ok(3_600_000));
        assert_eq!(duration_ms("0"), Ok(0));
        for bad in ["", "30", "s", "1s1m", "1x", "-1s", "1.5s"] {
            assert!(duration_ms(bad).is_err(), "{bad}");
        }
    }

    fn rule(action: &str) -> RelabelConfig {
        RelabelConfig {
            action: Some(action.into()),
            target_label: Some("t".into()),
            ..Default::default()
        }
    }

    fn sm(yaml: &str) -> ServiceMonitor {
        serde_yaml_ng::from_str(&format!(
            "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {{name: s, namespace: n}}\n{yaml}"
        ))
        .unwrap()
    }

    #[test]
    fn unrendered_fields_are_refused_by_path_and_empty_ones_ignored() {
        let cases = [
            (
                "spec: {endpoints: [{port: web, oauth2: {clientId: {secret: {name: s, key: u}}, tokenUrl: u, audience: x}}]}",
                "spec.endpoints[0].oauth2.audience",
            ),
            (
                "spec: {endpoints: [{port: web, basicAuth: {username: {name: s, key: u}, extra: 1}}]}",
                "spec.endpoints[0].basicAuth.extra",
            ),
            (
                "spec: {sampleLimits: 5, endpoints: []}",
                "spec.sampleLimits",
            ),
            (
                "spec: {endpoints: [{port: a}, {port: b, tlsConfig: {insecureSkipVerify: true, keyPassword: x}}]}",
                "spec.endpoints[1].tlsConfig.keyPassword",
            ),
            (
                "spec: {endpoints: [{port: a, relabelings: [{action: keep, regex: x, sourceLabels: [a], frobnicate: 1}]}]}",
                "spec.endpoints[0].relabelings[0].frobnicate",
            ),
        ];
        for (yaml, field) in cases {
            let err = service_monitor(&sm(yaml), 30_000).unwrap_err();
            assert!(err.starts_with(field) && err.contains("refused"), "{err}");
        }
        let fine = sm(
            "spec: {endpoints: [{port: web, tlsConfig: {}, basicAuth: null, followRedirects: false}]}",
        );
        assert!(service_monitor(&fine, 30_000).is_ok());
    }

    #[test]
    fn tls_auth_and_proxy_follow_the_operators_rules() {
        let ok = [
            "{tlsConfig: {ca: {secret: {name: s, key: ca.crt}}, cert: {configMap: {name: c, key: k}}, keySecret: {name: s, key: k}}}",
            "{tlsConfig: {caFile: /ca, serverName: x, minVersion: TLS12}}",
            "{oauth2: {clientId: {configMap: {name: c, key: id}}, clientSecret: {name: s, key: k}, tokenUrl: 'https://t', tlsConfig: {ca: {secret: {name: s, key: ca}}}}}",
            "{proxyUrl: 'http://p', noProxy: x, proxyConnectHeader: {X: [{name: s, key: k}]}}",
            "{proxyFromEnvironment: true, proxyConnectHeader: {X: [{name: s, key: k}]}}",
        ];
        for ep in ok {
            let sm = sm(&format!("spec: {{endpoints: [{ep}]}}"));
            assert_eq!(service_monitor(&sm, 30_000), Ok(()), "{ep}");
        }
        let refused = [
            (
                "{tlsConfig: {minVersion: TLS13, maxVersion: TLS12}}",
                "spec.endpoints[0].tlsConfig: maxVersion TLS12 is lower than minVersion TLS13",
            ),
            (
                "{tlsConfig: {minVersion: SSL3}}",
                "spec.endpoints[0].tlsConfig.minVersion: \"SSL3\" is not one of",
            ),
            (
                "{tlsConfig: {ca: {secret: {name: s, key: k}, configMap: {name: c, key: k}}}}",
                "spec.endpoints[0].tlsConfig.ca: cannot specify both",
            ),
            (
                "{tlsConfig: {ca: {secret: {name: s, key: k}}, caFile: /ca}}",
                "spec.endpoints[0].tlsConfig: cannot specify both caFile and ca",
            ),
            (
                "{tlsConfig: {cert: {secret: {name: s, key: k}}, certFile: /c, keyFile: /k}}",
                "spec.endpoints[0].tlsConfig: cannot specify both certFile and cert",
            ),
            (
                "{tlsConfig: {certFile: /c, keyFile: /k, keySecret: {name: s, key: k}}}",
                "spec.endpoints[0].tlsConfig: cannot specify both keyFile and keySecret",
            ),
            (
                "{tlsConfig: {cert: {secret: {name: s, key: k}}}}",
                "spec.endpoints[0].tlsConfig: a client cert needs a client key",
            ),
            (
                "{tlsConfig: {keyFile: /k}}",
                "spec.endpoints[0].tlsConfig: a client key needs a client cert",
            ),
            (
                "{basicAuth: {}, authorization: {}}",
                "spec.endpoints[0].authorization: authorization and basicAuth cannot be configured at the same time",
            ),
            (
                "{authorization: {type: Custom}}",
                "spec.endpoints[0].authorization.credentials: must be set",
            ),
            (
                "{bearerTokenSecret: {name: s, key: k}, oauth2: {}}",
                "spec.endpoints[0].bearerTokenSecret: bearerTokenSecret and oauth2",
            ),
            (
                "{oauth2: {clientId: {secret: {name: s, key: k}}}}",
                "spec.endpoints[0].oauth2.tokenUrl: must be set",
            ),
            (
                "{oauth2: {tokenUrl: t}}",
                "spec.endpoints[0].oauth2.clientId: must be set",
            ),
            (
                "{oauth2: {clientId: {secret: {name: s, key: k}}, tokenUrl: t, tlsConfig: {caFile: /ca}}}",
                "spec.endpoints[0].oauth2.tlsConfig.caFile: files are not allowed here",
            ),
            (
                "{oauth2: {clientId: {secret: {name: s, key: k}}, tokenUrl: t, noProxy: x}}",
                "spec.endpoints[0].oauth2.noProxy: needs proxyUrl",
            ),
            (
                "{proxyConnectHeader: {X: [{name: s, key: k}]}}",
                "spec.endpoints[0].proxyConnectHeader: needs proxyUrl or proxyFromEnvironment",
            ),
            (
                "{proxyUrl: 'http://p', proxyFromEnvironment: true}",
                "spec.endpoints[0].proxyUrl: cannot be configured together",
            ),
            (
                "{proxyFromEnvironment: true, noProxy: x}",
                "spec.endpoints[0].noProxy: cannot be configured together",
            ),
            (
                "{proxyUrl: 'http://p', proxyConnectHeader: {X: []}}",
                "spec.endpoints[0].proxyConnectHeader[X]: must not be empty",
            ),
        ];
        for (ep, want) in refused {
            let sm = sm(&format!("spec: {{endpoints: [{ep}]}}"));
            let err = service_monitor(&sm, 30_000).unwrap_err();
            assert!(err.starts_with(want), "{ep}: {err}");
        }
    }

    #[test]
    fn scrape_classes_follow_the_operators_rules() {
        let prom = |classes: &str| -> Prometheus {
            serde_yaml_ng::from_str(&format!(
                "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: k, namespace: n}}\nspec: {{scrapeClasses: {classes}}}"
            ))
            .unwrap()
        };
        let ok = prom(
            "[{name: a, default: true, tlsConfig: {caFile: /ca}, authorization: {credentialsFile: /t}}, {name: b}]",
        );
        assert_eq!(prometheus(&ok), Ok(()));
        let refused = [
            (
                "[{name: a, default: true}, {name: b, default: true}]",
                "spec.scrapeClasses[1]: multiple default",
            ),
            (
                "[{default: true}]",
                "spec.scrapeClasses[0].name: must be set",
            ),
            (
                "[{name: a, tlsConfig: {ca: {secret: {name: s, key: k}}}}]",
                "spec.scrapeClasses[0].tlsConfig.ca is not rendered",
            ),
            (
                "[{name: a, authorization: {credentials: {name: s, key: k}}}]",
                "spec.scrapeClasses[0].authorization.credentials is not rendered",
            ),
            (
                "[{name: a, relabelings: [{action: hashmod, targetLabel: x}]}]",
                "spec.scrapeClasses[0].relabelings[0]:",
            ),
            (
                "[{name: a, fallbackScrapeProtocol: Nope}]",
                "spec.scrapeClasses[0].fallbackScrapeProtocol:",
            ),
        ];
        for (classes, want) in refused {
            let err = prometheus(&prom(classes)).unwrap_err();
            assert!(err.starts_with(want), "{classes}: {err}");
        }
    }

    #[test]
    fn global_runtime_and_storage_settings_are_checked() {
        let prom = |spec: &str| -> Prometheus {
            serde_yaml_ng::from_str(&format!(
                "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: k, namespace: n}}\nspec: {spec}"
            ))
            .unwrap()
        };
        let ok = prom(
            "{nameValidationScheme: UTF8, nameEscapingScheme: Dots, ruleQueryOffset: 1m, runtime: {goGC: 1}, exemplars: {maxSize: 1}, tsdb: {outOfOrderTimeWindow: 5m, staleSeriesCompactionThreshold: 1, chunkEncoding: {floats: Xor}}, retentionPercentage: '12.5'}",
        );
        assert_eq!(prometheus(&ok), Ok(()));
        let refused = [
            ("{nameValidationScheme: utf8}", "spec.nameValidationScheme:"),
            ("{nameEscapingScheme: Slashes}", "spec.nameEscapingScheme:"),
            ("{ruleQueryOffset: 1 minute}", "spec.ruleQueryOffset:"),
            ("{runtime: {goGc: 5}}", "spec.runtime.goGc is not rendered"),
            (
                "{retentionPercentage: 101}",
                "spec.retentionPercentage must",
            ),
            (
                "{retentionPercentage: lots}",
                "spec.retentionPercentage must",
            ),
            (
                "{tsdb: {outOfOrderTimeWindow: 5}}",
                "spec.tsdb.outOfOrderTimeWindow:",
            ),
            (
                "{tsdb: {staleSeriesCompactionThreshold: '1.5'}}",
                "spec.tsdb.staleSeriesCompactionThreshold must",
            ),
            (
                "{tsdb: {chunkEncoding: {floats: Gorilla}}}",
                "spec.tsdb.chunkEncoding.floats:",
            ),
            (
                "{enableFeatures: [st-storage], tsdb: {chunkEncoding: {floats: Xor}}}",
                "spec.tsdb.chunkEncoding.floats \"Xor\" cannot go with the st-storage",
            ),
        ];
        for (spec, want) in refused {
            let err = prometheus(&prom(spec)).unwrap_err();
            assert!(err.starts_with(want), "{spec}: {err}");
        }
    }

    #[test]
    fn remote_and_alerting_clients_follow_prometheus_rules() {
        let prom = |spec: &str| -> Prometheus {
            serde_yaml_ng::from_str(&format!(
                "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: k, namespace: n}}\nspec: {spec}"
            ))
            .unwrap()
        };
        let ok = prom(
            "{remoteWrite: [{url: 'http://a', basicAuth: {username: {name: s, key: u}, password: {name: s, key: p}}, writeRelabelConfigs: [{action: drop, regex: x}]}], remoteRead: [{url: 'http://b', bearerToken: t}], alerting: {alertmanagers: [{name: am, port: web, apiVersion: v2}]}}",
        );
        assert_eq!(prometheus(&ok), Ok(()));
        let refused = [
            (
                "{remoteWrite: [{url: ''}]}",
                "spec.remoteWrite[0].url: must be set",
            ),
            (
                "{remoteWrite: [{url: 'http://a', sigv4: {region: eu}}]}",
                "spec.remoteWrite[0].sigv4 is not rendered",
            ),
            (
                "{remoteWrite: [{url: 'http://a', messageVersion: V3}]}",
                "spec.remoteWrite[0].messageVersion:",
            ),
            (
                "{remoteWrite: [{url: 'http://a', bearerToken: t, oauth2: {clientId: {secret: {name: s, key: i}}, clientSecret: {name: s, key: k}, tokenUrl: 'http://t'}}]}",
                "spec.remoteWrite[0]: oauth2 and bearerToken cannot be set at the same time",
            ),
            (
                "{remoteRead: [{url: 'http://a', authorization: {credentials: {name: s, key: t}, credentialsFile: /t}}]}",
                "spec.remoteRead[0].authorization: cannot specify both",
            ),
            (
                "{remoteWrite: [{url: 'http://a', writeRelabelConfigs: [{action: hashmod}]}]}",
                "spec.remoteWrite[0].writeRelabelConfigs[0]:",
            ),
            (
                "{remoteWrite: [{url: 'http://a', noProxy: x}]}",
                "spec.remoteWrite[0].noProxy: needs proxyUrl",
            ),
            (
                "{alerting: {alertmanagers: [{name: am, port: web, bearerTokenFile: /t, basicAuth: {}}]}}",
                "spec.alerting.alertmanagers[0]: bearerTokenFile and basicAuth",
            ),
            (
                "{alerting: {alertmanagers: [{name: am, apiVersion: V3}]}}",
                "spec.alerting.alertmanagers[0].apiVersion:",
            ),
            (
                "{alerting: {alertmanagers: [{port: web}]}}",
                "spec.alerting.alertmanagers[0].name: must be set",
            ),
        ];
        for (spec, want) in refused {
            let err = prometheus(&prom(spec)).unwrap_err();
            assert!(err.starts_with(want), "{spec}: {err}");
        }
    }

    #[test]
    fn protocols_and_sizes_are_checked() {
        let ok = sm(
            "spec: {scrapeProtocols: [PrometheusProto], fallbackScrapeProtocol: PrometheusText0.0.4, bodySizeLimit: 1.5GiB, endpoints: []}",
        );
        assert!(service_monitor(&ok, 30_000).is_ok());
        let bad = sm("spec: {scrapeProtocols: [Protobuf], endpoints: []}");
        assert!(
            service_monitor(&bad, 30_000)
                .unwrap_err()
                .contains("\"Protobuf\"")
        );
        let bad = sm("spec: {bodySizeLimit: lots, endpoints: []}");
        assert!(
            service_monitor(&bad, 30_000)
                .unwrap_err()
                .contains("bodySizeLimit")
        );
    }

    #[test]
    fn prometheus_fields_that_shape_the_config_are_refused() {
        let p: Prometheus = serde_yaml_ng::from_str(
            "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {name: k8s}\nspec: {replicas: 2, apiserverConfig: {host: \"https://api:6443\"}}",
        )
        .unwrap();
        let err = prometheus(&p).unwrap_err();
        assert!(err.starts_with("spec.apiserverConfig"), "{err}");
        let misspelled: Prometheus = serde_yaml_ng::from_str(
            "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {name: k8s}\nspec: {serviceMonitorSelecter: {}}",
        )
        .unwrap();
        let err = prometheus(&misspelled).unwrap_err();
        assert!(
            err.starts_with("spec.serviceMonitorSelecter is not a field"),
            "{err}"
        );
        let fine: Prometheus = serde_yaml_ng::from_str(
            "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {name: k8s}\nspec: {replicas: 2, retention: 10d, overrideHonorLabels: false}",
        )
        .unwrap();
        assert!(prometheus(&fine).is_ok());
    }

    #[test]
    fn relabel_rules() {
        assert!(relabel(&rule("Replace")).is_ok());
        assert!(
            relabel(&rule("frobnicate"))
                .unwrap_err()
                .contains("unknown relabel action")
        );
        let bad_regex = RelabelConfig {
            regex: Some("(unclosed".into()),
            ..rule("keep")
        };
        assert!(relabel(&bad_regex).unwrap_err().contains("invalid regex"));
        assert!(relabel(&rule("hashmod")).unwrap_err().contains("modulus"));
        let no_target = RelabelConfig {
            target_label: None,
            ..rule("replace")
        };
        assert!(relabel(&no_target).is_err());
        assert!(
            relabel(&RelabelConfig::default()).is_err(),
            "replace needs a target"
        );
    }

    fn probe_object(spec: &str) -> Probe {
        serde_yaml_ng::from_str(&format!(
            "apiVersion: monitoring.coreos.com/v1\nkind: Probe\nmetadata: {{name: p, namespace: n}}\nspec: {spec}"
        ))
        .unwrap()
    }

    #[test]
    fn probes_are_checked_as_the_operator_checks_them_and_a_little_more() {
        let ok = "{prober: {url: 'blackbox:9115'}, targets: {staticConfig: {static: [a]}}}";
        assert_eq!(probe(&probe_object(ok), 30_000, true), Ok(()));
        for (spec, want) in [
            (
                "{prober: {url: 'blackbox:9115'}, targets: {}}",
                "at least one of .spec.targets.staticConfig",
            ),
            (
                "{prober: {url: 'http://blackbox:9115'}, targets: {staticConfig: {}}}",
                "url specified in proberSpec is invalid",
            ),
            (
                "{prober: {url: 'blackbox:0'}, targets: {staticConfig: {}}}",
                "invalid port",
            ),
            (
                "{prober: {url: 'bad host'}, targets: {staticConfig: {}}}",
                "invalid host",
            ),
            (
                "{prober: {url: b}, targets: {staticConfig: {labels: {'': y}}}}",
                "invalid label \"\"",
            ),
            (
                "{prober: {url: b}, targets: {staticConfig: {}}, bodySizeLimit: 1MB}",
                "spec.bodySizeLimit is not a field of a Probe",
            ),
            (
                "{prober: {url: b}, targets: {staticConfig: {}}, proxyUrl: 'http://p'}",
                "the prober's proxy is spec.prober.proxyUrl",
            ),
            (
                "{prober: {url: b}, targets: {staticConfig: {}}, tlsConfig: {caFile: /ca}}",
                "spec.tlsConfig.caFile: files are not allowed here",
            ),
            // The operator renders both, and Prometheus then refuses the whole config: here
            // the Probe alone is left out.
            (
                "{prober: {url: b}, targets: {staticConfig: {}}, bearerTokenSecret: {name: s, key: t}, authorization: {credentials: {name: s, key: t}}}",
                "authorization and bearerTokenSecret cannot be configured at the same time",
            ),
        ] {
            let err = probe(&probe_object(spec), 30_000, true)
                .err()
                .unwrap_or_else(|| panic!("accepted: {spec}"));
            assert!(err.contains(want), "{spec}: {err}");
        }
        // UTF-8 label names from Prometheus 3.0 only.
        let dotted = "{prober: {url: b}, targets: {staticConfig: {labels: {a.b: c}}}}";
        assert_eq!(probe(&probe_object(dotted), 30_000, true), Ok(()));
        assert!(probe(&probe_object(dotted), 30_000, false).is_err());
        for url in [
            "b",
            "b:9115",
            "10.0.0.1:9115",
            "[::1]:9115",
            "::1",
            "a.b-c.example.",
        ] {
            assert_eq!(prober_url(url), Ok(()), "{url}");
        }
    }
}
