//! Validation of what users write. A scrape object that fails is left out of the config with
//! the reason (the Warning Event's message); the rest of the config is still written. The
//! checks per kind are in `prometheus` (the Prometheus, its outputs and scrape classes),
//! `monitors` (ServiceMonitors, PodMonitors, Probes), `scrape_config` and `client` (the HTTP
//! client every scrape object has); this file holds what they share: durations, relabel
//! rules, the field lists held to the upstream CRDs, enums.
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

mod client;
mod monitors;
mod prometheus;
mod scrape_config;

pub use client::*;
pub use monitors::*;
pub use prometheus::*;
pub use scrape_config::{Supports, label_selector, scrape_config};

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

/// `Prometheus` spec fields of prometheus-operator v0.94 that shape the Pods and that the
/// workload (`workload`) does not build yet: a Prometheus setting one is refused, naming the
/// field, when the reconciler runs its Pods; they are not config, so a reconciler that writes
/// the config only leaves them to whoever runs the Pods. A field in no list and not typed is
/// unknown (a misspelling, or a newer API) and refuses the Prometheus. A test holds the
/// lists to the upstream CRD.
pub const PROMETHEUS_POD_UNBUILT: &[&str] = &["shardingStrategy", "thanos"];

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
