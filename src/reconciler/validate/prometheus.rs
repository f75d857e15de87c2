//! The checks of a Prometheus: its own fields (global section, storage, scrape classes),
//! its remote writes and reads, Alertmanagers and `additional*` Secrets.

use super::*;

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
        ![PROMETHEUS_UNRENDERED, PROMETHEUS_POD_UNBUILT]
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
pub(super) fn name_schemes(
    validation: &Option<String>,
    escaping: &Option<String>,
) -> Result<(), String> {
    one_of("spec.nameValidationScheme", validation, &["UTF8", "Legacy"])?;
    one_of(
        "spec.nameEscapingScheme",
        escaping,
        &["AllowUTF8", "Underscores", "Dots", "Values"],
    )
}

/// The global, runtime and storage settings: enums, durations and ranges as the CRD and the
/// operator check them.
pub(super) fn storage_settings(spec: &PrometheusSpec) -> Result<(), String> {
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

/// The client rules of a remote write or read, or an Alertmanager (`path` names it): one
/// authentication method (the operator checks fewer pairs and writes a config Prometheus
/// refuses to load, for example `oauth2` with `bearerToken`; this refuses it up front), an `authorization` with a Secret or a file (not both, and not of
/// type `Basic`), and consistent OAuth 2.0, TLS and proxy settings.
pub(super) fn remote_client(path: &str, client: &RemoteClient) -> Result<(), String> {
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

pub(super) fn is_text(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.is_empty())
}

/// What [`remote_client`] checks, borrowed from a remote write or read or an Alertmanager.
pub(super) struct RemoteClient<'a> {
    pub(super) methods: Vec<(&'static str, bool)>,
    pub(super) basic_auth: Option<&'a BasicAuth>,
    pub(super) authorization: Option<&'a Authorization>,
    pub(super) oauth2: Option<&'a OAuth2>,
    pub(super) tls: Option<&'a TlsConfig>,
    pub(super) proxy: &'a ProxyConfig,
}

/// The operator's rules for `remoteWrite`, `remoteRead` and `alerting`.
pub(super) fn outputs(spec: &PrometheusSpec) -> Result<(), String> {
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
pub(super) fn scrape_classes(classes: &[ScrapeClass]) -> Result<(), String> {
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
