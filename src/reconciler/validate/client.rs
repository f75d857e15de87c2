//! The checks of an HTTP client (the one `HttpClient` of every scrape object): one
//! authentication method, a complete `oauth2`, a consistent proxy and TLS, no files where
//! none are allowed.

use super::*;

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
pub(super) fn client_rules(client: &HttpClient) -> Result<(), String> {
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
pub(super) fn oauth2_rules(oauth2: &OAuth2) -> Result<(), String> {
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

/// A Secret-or-ConfigMap reference must not name both.
pub(super) fn either(path: &str, sel: &SecretOrConfigMap) -> Result<(), String> {
    if sel.secret.is_some() && sel.config_map.is_some() {
        return Err(format!("{path}: cannot specify both secret and configMap"));
    }
    Ok(())
}

/// The operator's proxy rules (`ProxyConfig.Validate`).
pub(super) fn proxy(config: &ProxyConfig) -> Result<(), String> {
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
pub(super) fn tls_config(path: &str, tls: &TlsConfig, files: bool) -> Result<(), String> {
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
