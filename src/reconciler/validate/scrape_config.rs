//! The checks of a ScrapeConfig, as prometheus-operator v0.94's `checkScrapeConfig` makes
//! them (plus what its CRD's schema enforces, for clusters running this project's CRDs):
//! fields not rendered (other discovery kinds among them), the scrape's own settings, then
//! each discovery config's. Credentials are resolved later, with the rest of the object's
//! references (see `check`).

use super::super::crd::{
    ConsulSdConfig, DnsSdConfig, HttpClient, KubernetesSdConfig, ScrapeConfig, StaticConfig,
};
use super::{
    ScrapeEndpoint, first_unrendered, http_client, name_schemes, one_of, relabel_fields,
    scrape_endpoint, scrape_settings, valid_label_name,
};

/// The roles of a Kubernetes SD config, as the CRD spells them.
const ROLES: &[&str] = &[
    "Pod",
    "Service",
    "Endpoints",
    "EndpointSlice",
    "Node",
    "Ingress",
];

/// DNS record types.
const DNS_TYPES: &[&str] = &["A", "AAAA", "SRV", "MX", "NS"];

/// Whether the Prometheus version has what needs `major.minor.patch`.
pub type Supports<'a> = &'a dyn Fn(u64, u64, u64) -> bool;

/// Checks a ScrapeConfig whole but for its references.
pub fn scrape_config(
    sc: &ScrapeConfig,
    global_interval_ms: u64,
    supports: Supports,
) -> Result<(), String> {
    let spec = &sc.spec;
    first_unrendered("spec", &spec.unrendered)?;
    // Fields a ServiceMonitor has and a ScrapeConfig has not: refused, never dropped.
    let client = &spec.client;
    for (field, set) in [
        ("attachMetadata", spec.scrape.attach_metadata.is_some()),
        ("followRedirects", client.follow_redirects.is_some()),
        ("bearerTokenSecret", client.bearer_token_secret.is_some()),
        ("bearerTokenFile", client.bearer_token_file.is_some()),
    ] {
        if set {
            return Err(format!(
                "spec.{field} is not a field of a ScrapeConfig{}",
                if field == "attachMetadata" {
                    " (set it on a kubernetesSDConfigs entry)"
                } else {
                    ""
                }
            ));
        }
    }
    scrape_settings(&spec.scrape)?;
    http_client("spec", client, false)?;
    let scrape = ScrapeEndpoint {
        interval: &spec.scrape_interval,
        scrape_timeout: &spec.scrape_timeout,
        scheme: &spec.scheme,
        relabelings: &spec.relabelings,
        metric_relabelings: &spec.metric_relabelings,
    };
    relabel_fields("spec", &scrape)?;
    scrape_endpoint(&scrape, global_interval_ms).map_err(|e| format!("spec.{e}"))?;
    name_schemes(&spec.name_validation_scheme, &spec.name_escaping_scheme)?;
    // Beyond the operator, which writes it: Prometheus refuses to load the whole config.
    if spec.name_validation_scheme.as_deref() == Some("Legacy")
        && spec.name_escaping_scheme.as_deref() == Some("AllowUTF8")
    {
        return Err(
            "spec.nameEscapingScheme: AllowUTF8 needs nameValidationScheme UTF8, not Legacy \
             (Prometheus refuses to load such a job)"
                .into(),
        );
    }
    for (i, config) in spec.static_configs.iter().enumerate() {
        static_config(&format!("spec.staticConfigs[{i}]"), config, supports)?;
    }
    for (i, config) in spec.file_sd_configs.iter().enumerate() {
        let path = format!("spec.fileSDConfigs[{i}]");
        first_unrendered(&path, &config.unrendered)?;
        if config.files.is_empty() {
            return Err(format!("{path}.files: at least one file is required"));
        }
    }
    // The operator refuses every ScrapeConfig below 2.28, HTTP SD configs or not.
    if !supports(2, 28, 0) {
        return Err(
            "spec.httpSDConfigs: HTTP SD configuration is only supported for Prometheus \
             version >= 2.28.0 (prometheus-operator refuses every ScrapeConfig below it)"
                .into(),
        );
    }
    for (i, config) in spec.http_sd_configs.iter().enumerate() {
        let path = format!("spec.httpSDConfigs[{i}]");
        first_unrendered(&path, &config.unrendered)?;
        if config.url.is_empty() {
            return Err(format!("{path}.url: must be set"));
        }
        sd_client(&path, &config.client)?;
    }
    for (i, config) in spec.kubernetes_sd_configs.iter().enumerate() {
        kubernetes(&format!("spec.kubernetesSDConfigs[{i}]"), config, supports)?;
    }
    for (i, config) in spec.consul_sd_configs.iter().enumerate() {
        consul(&format!("spec.consulSDConfigs[{i}]"), config, supports)?;
    }
    for (i, config) in spec.dns_sd_configs.iter().enumerate() {
        dns(&format!("spec.dnsSDConfigs[{i}]"), config)?;
    }
    Ok(())
}

/// A discovery config's client: no files, no bearer token fields.
fn sd_client(path: &str, client: &HttpClient) -> Result<(), String> {
    for (field, set) in [
        ("bearerTokenSecret", client.bearer_token_secret.is_some()),
        ("bearerTokenFile", client.bearer_token_file.is_some()),
    ] {
        if set {
            return Err(format!(
                "{path}.{field} is not a field of a discovery config"
            ));
        }
    }
    http_client(path, client, false)
}

fn static_config(path: &str, config: &StaticConfig, supports: Supports) -> Result<(), String> {
    first_unrendered(path, &config.unrendered)?;
    let utf8 = supports(3, 0, 0);
    for name in config.labels.iter().flat_map(|l| l.keys()) {
        if !valid_label_name(name, utf8) {
            return Err(format!("{path}.labels: invalid label {name:?}"));
        }
    }
    Ok(())
}

fn kubernetes(path: &str, config: &KubernetesSdConfig, supports: Supports) -> Result<(), String> {
    first_unrendered(path, &config.unrendered)?;
    let role = Some(config.role.clone());
    one_of(&format!("{path}.role"), &role, ROLES)?;
    if config.role == "EndpointSlice" && !supports(2, 21, 0) {
        return Err(format!(
            "{path}.role: EndpointSlice role is only supported for Prometheus version >= 2.21.0"
        ));
    }
    if let Some(ns) = &config.namespaces {
        first_unrendered(&format!("{path}.namespaces"), &ns.unrendered)?;
        if config.api_server.is_some() && ns.own_namespace == Some(true) {
            return Err(format!(
                "{path}: cannot use 'apiServer' and 'namespaces.ownNamespace' simultaneously"
            ));
        }
    }
    if let Some(attach) = &config.attach_metadata {
        first_unrendered(&format!("{path}.attachMetadata"), &attach.unrendered)?;
    }
    let allowed: &[&str] = match config.role.as_str() {
        "Endpoints" => &["Pod", "Service", "Endpoints"],
        "EndpointSlice" => &["Pod", "Service", "EndpointSlice"],
        other => &[other][..],
    };
    for (j, selector) in config.selectors.iter().enumerate() {
        let at = format!("{path}.selectors[{j}]");
        first_unrendered(&at, &selector.unrendered)?;
        if !allowed
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&selector.role))
        {
            return Err(format!(
                "{at}.role: the {} role supports only {} selectors",
                config.role,
                allowed.join(", ")
            ));
        }
        if let Some(label) = &selector.label {
            label_selector(label).map_err(|e| format!("{at}.label: {e}"))?;
        }
        if let Some(field) = &selector.field {
            field_selector(field).map_err(|e| format!("{at}.field: {e}"))?;
        }
    }
    sd_client(path, &config.client)
}

fn consul(path: &str, config: &ConsulSdConfig, supports: Supports) -> Result<(), String> {
    first_unrendered(path, &config.unrendered)?;
    if config.server.is_empty() {
        return Err(format!("{path}.server: must be set"));
    }
    for (field, set, (major, minor, patch)) in [
        ("pathPrefix", config.path_prefix.is_some(), (2, 45, 0)),
        ("namespace", config.namespace.is_some(), (2, 28, 0)),
        ("filter", config.filter.is_some(), (3, 0, 0)),
        ("healthFilter", config.health_filter.is_some(), (3, 11, 2)),
    ] {
        if set && !supports(major, minor, patch) {
            return Err(format!(
                "{path}.{field}: only supported for Prometheus version >= {major}.{minor}.{patch}"
            ));
        }
    }
    if let Some(scheme) = &config.scheme
        && !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
    {
        return Err(format!("{path}.scheme: {scheme:?} is not http or https"));
    }
    if let Some(token) = &config.token_ref
        && token.name.is_empty()
    {
        return Err(format!("{path}.tokenRef: a Secret name is required"));
    }
    sd_client(path, &config.client)
}

fn dns(path: &str, config: &DnsSdConfig) -> Result<(), String> {
    first_unrendered(path, &config.unrendered)?;
    if config.names.is_empty() {
        return Err(format!("{path}.names: at least one name is required"));
    }
    one_of(&format!("{path}.type"), &config.type_, DNS_TYPES)?;
    if let Some(kind) = config.type_.as_deref()
        && kind != "SRV"
        && config.port.is_none()
    {
        return Err(format!("{path}: port required for record type {kind:?}"));
    }
    Ok(())
}

/// A Kubernetes label selector in its text form (`a=b,c!=d,e in (f,g),!h`), checked as the
/// API server parses it: each requirement a key (an optional `prefix/` and a name of at most
/// 63 characters) with an operator and values, or a key alone, or `!key`.
pub fn label_selector(text: &str) -> Result<(), String> {
    for requirement in split_requirements(text)? {
        let r = requirement.trim();
        if r.is_empty() {
            return Err(format!("{text:?}: an empty requirement"));
        }
        if let Some(key) = r.strip_prefix('!') {
            label_key(key.trim()).map_err(|e| format!("{r:?}: {e}"))?;
            continue;
        }
        let (key, rest) = r.split_at(r.find(|c: char| " =!<>".contains(c)).unwrap_or(r.len()));
        let rest = rest.trim();
        label_key(key).map_err(|e| format!("{r:?}: {e}"))?;
        let values = if let Some(v) = ["==", "!=", "="]
            .iter()
            .find_map(|op| rest.strip_prefix(op))
        {
            vec![v.trim()]
        } else if let Some(v) = rest.strip_prefix('>').or_else(|| rest.strip_prefix('<')) {
            v.trim()
                .parse::<i64>()
                .map_err(|_| format!("{r:?}: `>` and `<` take an integer"))?;
            continue;
        } else if let Some(set) = rest
            .strip_prefix("notin")
            .or_else(|| rest.strip_prefix("in"))
        {
            let set = set.trim();
            let inner = set
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .ok_or_else(|| format!("{r:?}: a set of values is written (a,b)"))?;
            inner.split(',').map(str::trim).collect()
        } else if rest.is_empty() {
            continue;
        } else {
            return Err(format!("{r:?}: unknown operator"));
        };
        for value in values {
            label_value(value).map_err(|e| format!("{r:?}: {e}"))?;
        }
    }
    Ok(())
}

/// The requirements of a label selector: split at commas outside parentheses.
fn split_requirements(text: &str) -> Result<Vec<&str>, String> {
    let (mut depth, mut start, mut out) = (0i32, 0, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(format!("{text:?}: unbalanced parentheses"));
        }
    }
    if depth != 0 {
        return Err(format!("{text:?}: unbalanced parentheses"));
    }
    out.push(&text[start..]);
    Ok(out)
}

/// A field selector (`a=b,c!=d`, also `==`).
fn field_selector(text: &str) -> Result<(), String> {
    for requirement in text.split(',') {
        let r = requirement.trim();
        let key = ["!=", "==", "="]
            .iter()
            .find_map(|op| r.split_once(op).map(|(k, _)| k.trim()))
            .ok_or_else(|| format!("{r:?}: a field requirement is key=value or key!=value"))?;
        if key.is_empty() {
            return Err(format!("{r:?}: the field name is empty"));
        }
    }
    Ok(())
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name.
fn label_key(key: &str) -> Result<(), String> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            let ok = !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|part| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        && !part.starts_with('-')
                        && !part.ends_with('-')
                });
            if !ok {
                return Err(format!("invalid label key prefix {prefix:?}"));
            }
            name
        }
        None => key,
    };
    if name.is_empty() {
        return Err("a label key is required".into());
    }
    label_value(name).map_err(|_| format!("invalid label key {key:?}"))
}

/// A label value: empty, or at most 63 alphanumerics, `-`, `_` and `.`, starting and ending
/// with an alphanumeric.
fn label_value(value: &str) -> Result<(), String> {
    let ok = value.is_empty()
        || (value.len() <= 63
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid label value {value:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_parse_as_the_api_server_reads_them() {
        for good in [
            "app=web",
            "app==web,tier!=db",
            "app in (a, b),!legacy",
            "example.com/team notin (x)",
            "present",
            "gen>3",
            "app=",
        ] {
            assert_eq!(label_selector(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "app=web,",
            "app in (a",
            "app in a,b",
            "-app=x",
            "app=-x",
            "app~x",
            "gen>x",
            "Bad_Prefix/x=y",
        ] {
            assert!(label_selector(bad).is_err(), "{bad}");
        }
    }

    fn check(spec: &str, version: (u64, u64, u64)) -> Result<(), String> {
        let sc: ScrapeConfig = serde_yaml_ng::from_str(&format!(
            "apiVersion: monitoring.coreos.com/v1alpha1\nkind: ScrapeConfig\n\
             metadata: {{name: s, namespace: n}}\nspec: {spec}"
        ))
        .expect("a test object parses");
        scrape_config(&sc, 30_000, &|a, b, c| (a, b, c) <= version)
    }

    #[test]
    fn scrape_configs_are_refused_by_field_and_reason() {
        let v3 = (3, 14, 0);
        assert_eq!(check("{staticConfigs: [{targets: [a:80]}]}", v3), Ok(()));
        for (spec, version, wanted) in [
            (
                "{ec2SDConfigs: [{region: x}]}",
                v3,
                "spec.ec2SDConfigs is not rendered",
            ),
            (
                "{bearerTokenSecret: {name: a, key: b}}",
                v3,
                "spec.bearerTokenSecret is not a field",
            ),
            (
                "{httpSDConfigs: [{url: 'http://x', bearerTokenSecret: {name: a, key: b}}]}",
                v3,
                "spec.httpSDConfigs[0].bearerTokenSecret",
            ),
            (
                "{dnsSDConfigs: [{names: [x], type: A}]}",
                v3,
                "port required",
            ),
            (
                "{nameValidationScheme: Legacy, nameEscapingScheme: AllowUTF8}",
                v3,
                "AllowUTF8 needs nameValidationScheme UTF8",
            ),
            (
                "{consulSDConfigs: [{server: 'c:8500', healthFilter: x}]}",
                (3, 11, 1),
                "healthFilter: only supported for Prometheus version >= 3.11.2",
            ),
            (
                "{staticConfigs: [{targets: [a:80]}]}",
                (2, 27, 0),
                "HTTP SD configuration",
            ),
            (
                "{kubernetesSDConfigs: [{role: Node, selectors: [{role: Pod}]}]}",
                v3,
                "the Node role supports only Node selectors",
            ),
            (
                "{kubernetesSDConfigs: [{role: Pods}]}",
                v3,
                "spec.kubernetesSDConfigs[0].role",
            ),
            (
                "{staticConfigs: [{targets: [a:80], labels: {a.b: c}}]}",
                (2, 55, 0),
                "invalid label \"a.b\"",
            ),
            (
                "{scrapeInterval: 10s, scrapeTimeout: 20s}",
                v3,
                "spec.scrapeTimeout 20s is greater",
            ),
        ] {
            let error = check(spec, version).expect_err(spec);
            assert!(error.contains(wanted), "{spec}: {error}");
        }
    }

    #[test]
    fn field_selectors_need_an_operator() {
        assert_eq!(
            field_selector("spec.nodeName=n1,status.phase!=Failed"),
            Ok(())
        );
        assert!(field_selector("spec.nodeName").is_err());
        assert!(field_selector("=x").is_err());
    }
}
