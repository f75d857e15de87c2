//! Validation of what users write: Prometheus durations, relabel rules and whole
//! ServiceMonitors. A ServiceMonitor that fails is left out of the config with the reason
//! (the Warning Event's message); the rest of the config is still written.
//!
//! **No silent drops.** A field this reconciler does not render is refused, never ignored: a
//! ServiceMonitor using one (for example `basicAuth`, `tlsConfig` or `sampleLimit`) is left out
//! with a Warning Event naming the field, since scraping without its credentials or limits
//! would be wrong while looking right. A Prometheus that sets a field shaping the generated
//! config ([`PROMETHEUS_UNRENDERED`]) gets no config at all (its Secret keeps the last good
//! one) and a condition naming the field. Fields that do not change the config file (replicas,
//! storage, resources, ...) are not its business.

use std::collections::BTreeMap;

use serde_json::Value;

use super::crd::{Endpoint, Prometheus, RelabelConfig, ServiceMonitor};
use super::select;

/// `Prometheus` spec fields that prometheus-operator v0.94 reads when it generates the config
/// file, and that this reconciler does not render yet. Setting any of them refuses the
/// Prometheus (found by reading the operator's `pkg/prometheus/promcfg.go`).
pub const PROMETHEUS_UNRENDERED: &[&str] = &[
    "additionalAlertManagerConfigs",
    "additionalAlertRelabelConfigs",
    "additionalScrapeConfigs",
    "alerting",
    "apiserverConfig",
    "arbitraryFSAccessThroughSMs",
    "convertClassicHistogramsToNHCB",
    "excludedFromEnforcement",
    "exemplars",
    "nameEscapingScheme",
    "nameValidationScheme",
    "otlp",
    "podMonitorNamespaceSelector",
    "podMonitorSelector",
    "podTargetLabels",
    "probeNamespaceSelector",
    "probeSelector",
    "queryLogFile",
    "remoteRead",
    "remoteWrite",
    "retentionPercentage",
    "ruleNamespaceSelector",
    "ruleQueryOffset",
    "ruleSelector",
    "runtime",
    "scrapeClasses",
    "scrapeClassicHistograms",
    "scrapeConfigNamespaceSelector",
    "scrapeConfigSelector",
    "scrapeFailureLogFile",
    "scrapeNativeHistograms",
    "serviceDiscoveryRole",
    "tracingConfig",
    "tsdb",
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
    first_unrendered("spec", &sm.spec.unrendered)?;
    if let Some(ns) = &sm.spec.namespace_selector {
        first_unrendered("spec.namespaceSelector", &ns.unrendered)?;
    }
    select::validate(&sm.spec.selector).map_err(|e| format!("selector: {e}"))?;
    let protocols = sm.spec.scrape_protocols.iter();
    for (i, protocol) in protocols
        .chain(&sm.spec.fallback_scrape_protocol)
        .enumerate()
    {
        if !SCRAPE_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(format!(
                "scrape protocol {protocol:?} (entry {i}) is not one of {}",
                SCRAPE_PROTOCOLS.join(", ")
            ));
        }
    }
    if let Some(size) = &sm.spec.body_size_limit
        && !is_byte_size(size)
    {
        return Err(format!(
            "bodySizeLimit {size:?} is not a size such as 10MB, 512KiB or 0"
        ));
    }
    for (i, ep) in sm.spec.endpoints.iter().enumerate() {
        let path = format!("spec.endpoints[{i}]");
        first_unrendered(&path, &ep.unrendered)?;
        if let Some(basic) = &ep.basic_auth {
            first_unrendered(&format!("{path}.basicAuth"), &basic.unrendered)?;
        }
        if let Some(authz) = &ep.authorization {
            first_unrendered(&format!("{path}.authorization"), &authz.unrendered)?;
        }
        if let Some(tls) = &ep.tls_config {
            first_unrendered(&format!("{path}.tlsConfig"), &tls.unrendered)?;
            if let (Some(min), Some(max)) = (&tls.min_version, &tls.max_version)
                && max < min
            {
                return Err(format!(
                    "{path}.tlsConfig: maxVersion {max} is lower than minVersion {min}"
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
                        "{path}.tlsConfig.{field}: {v:?} is not one of {}",
                        TLS_VERSIONS.join(", ")
                    ));
                }
            }
        }
        for (what, rules) in [
            ("relabelings", &ep.relabelings),
            ("metricRelabelings", &ep.metric_relabelings),
        ] {
            for (j, rule) in rules.iter().enumerate() {
                first_unrendered(&format!("{path}.{what}[{j}]"), &rule.unrendered)?;
            }
        }
        endpoint(ep, global_interval_ms).map_err(|e| format!("endpoints[{i}]: {e}"))?;
    }
    Ok(())
}

fn endpoint(ep: &Endpoint, global_interval_ms: u64) -> Result<(), String> {
    let interval = match &ep.interval {
        Some(i) => duration_ms(i).map_err(|e| format!("interval: {e}"))?,
        None => global_interval_ms,
    };
    if let Some(t) = &ep.scrape_timeout {
        let timeout = duration_ms(t).map_err(|e| format!("scrapeTimeout: {e}"))?;
        if timeout > interval {
            return Err(format!(
                "scrapeTimeout {t} is greater than the scrape interval {}",
                ep.interval.as_deref().unwrap_or("(global)")
            ));
        }
    }
    if let Some(scheme) = &ep.scheme
        && !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
    {
        return Err(format!("scheme {scheme:?} is not http or https"));
    }
    for (what, rules) in [
        ("relabelings", &ep.relabelings),
        ("metricRelabelings", &ep.metric_relabelings),
    ] {
        for (j, rule) in rules.iter().enumerate() {
            relabel(rule).map_err(|e| format!("{what}[{j}]: {e}"))?;
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
                "spec: {endpoints: [{port: web, oauth2: {clientId: {secret: {name: s, key: u}}}}]}",
                "spec.endpoints[0].oauth2",
            ),
            (
                "spec: {endpoints: [{port: web, basicAuth: {username: {name: s, key: u}, extra: 1}}]}",
                "spec.endpoints[0].basicAuth.extra",
            ),
            (
                "spec: {attachMetadata: {node: true}, endpoints: []}",
                "spec.attachMetadata",
            ),
            (
                "spec: {endpoints: [{port: a}, {port: b, tlsConfig: {insecureSkipVerify: true, keySecret: {name: s, key: k}}}]}",
                "spec.endpoints[1].tlsConfig.keySecret",
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
    fn tls_material_from_secrets_is_refused_and_versions_checked() {
        let secret_ca = sm(
            "spec: {endpoints: [{port: web, tlsConfig: {ca: {secret: {name: s, key: ca.crt}}}}]}",
        );
        let err = service_monitor(&secret_ca, 30_000).unwrap_err();
        assert!(
            err.starts_with("spec.endpoints[0].tlsConfig.ca is not rendered"),
            "{err}"
        );
        let files = sm(
            "spec: {endpoints: [{port: web, tlsConfig: {caFile: /ca, serverName: x, minVersion: TLS12}}]}",
        );
        assert!(service_monitor(&files, 30_000).is_ok());
        let inverted =
            sm("spec: {endpoints: [{tlsConfig: {minVersion: TLS13, maxVersion: TLS12}}]}");
        assert!(
            service_monitor(&inverted, 30_000)
                .unwrap_err()
                .contains("lower than")
        );
        let bogus = sm("spec: {endpoints: [{tlsConfig: {minVersion: SSL3}}]}");
        assert!(
            service_monitor(&bogus, 30_000)
                .unwrap_err()
                .contains("\"SSL3\"")
        );
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
            "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {name: k8s}\nspec: {replicas: 2, remoteWrite: [{url: \"http://thanos:19291/api/v1/receive\"}]}",
        )
        .unwrap();
        let err = prometheus(&p).unwrap_err();
        assert!(err.starts_with("spec.remoteWrite"), "{err}");
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
}
