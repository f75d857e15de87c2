//! The HTTP client part of a scrape job, in prometheus-operator's order: proxy, `oauth2`,
//! `tls_config`, then the credentials (`bearer_token_file`, `bearer_token`, `basic_auth`,
//! `authorization`).
//!
//! Values from Secrets and ConfigMaps are resolved here. Credentials are written inline, as
//! the operator writes them (which is why the config is a Secret). TLS material (CA, client
//! certificate and key) is not: it is collected into the TLS assets, which the controller
//! writes to the operator's `prometheus-<name>-tls-assets-<i>` Secrets, mounted at
//! [`TLS_ASSETS_DIR`]; the config refers to the files. PEM that does not parse, or a client
//! certificate that does not match its key, rejects the ServiceMonitor, as with the operator.

use std::collections::BTreeMap;

use crate::admin::key_pair::{self, KeyError};
use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_yaml_ng::{Mapping, Value};

use super::crd::{
    BasicAuth, HttpClient, OAuth2, ProxyConfig, SafeAuthorization, ScrapeClass, SecretKeySelector,
    SecretOrConfigMap, TlsConfig,
};
use super::credentials::{Assets, Kind};

/// Where the Prometheus container mounts the TLS assets.
pub const TLS_ASSETS_DIR: &str = "/etc/prometheus/certs";

/// TLS material the config refers to: file name in [`TLS_ASSETS_DIR`] -> PEM.
pub type TlsAssets = BTreeMap<String, String>;

/// What resolving a job's client settings needs.
pub struct Client<'a> {
    /// The ServiceMonitor's namespace, where its references live.
    pub namespace: &'a str,
    /// Referenced Secrets and ConfigMaps.
    pub assets: &'a Assets,
    /// Whether the Prometheus version supports a setting added in `(major, minor)`.
    pub supports: &'a dyn Fn(u64, u64) -> bool,
}

/// The proxy settings shared by every client and `oauth2`.
#[derive(Default, Clone, Copy)]
pub struct Proxy<'a> {
    /// `proxyUrl`.
    pub url: Option<&'a str>,
    /// `noProxy`.
    pub no_proxy: Option<&'a str>,
    /// `proxyFromEnvironment`.
    pub from_environment: Option<bool>,
    /// `proxyConnectHeader`.
    pub connect_header: Option<&'a BTreeMap<String, Vec<SecretKeySelector>>>,
}

/// An `authorization` header: its scheme, and credentials from a Secret or a file.
#[derive(Default, Clone, Copy)]
pub struct Authz<'a> {
    /// The scheme; `Bearer` when unset or blank.
    pub type_: Option<&'a str>,
    /// The credentials, from a Secret.
    pub credentials: Option<&'a SecretKeySelector>,
    /// The credentials, from a file.
    pub credentials_file: Option<&'a str>,
}

/// The client settings of one HTTP client (a scrape endpoint, a remote write or read, an
/// Alertmanager), as references into the object that sets them.
#[derive(Default)]
pub struct Settings<'a> {
    /// `basicAuth`.
    pub basic_auth: Option<&'a BasicAuth>,
    /// `bearerTokenSecret` (endpoints).
    pub bearer_token_secret: Option<&'a SecretKeySelector>,
    /// An inline `bearerToken` (remote write and read).
    pub bearer_token: Option<&'a str>,
    /// `bearerTokenFile`.
    pub bearer_token_file: Option<&'a str>,
    /// `authorization`.
    pub authorization: Option<Authz<'a>>,
    /// `oauth2`.
    pub oauth2: Option<&'a OAuth2>,
    /// `tlsConfig`.
    pub tls: Option<TlsConfig>,
    /// The proxy settings.
    pub proxy: Proxy<'a>,
}

impl<'a> Proxy<'a> {
    /// The proxy settings of a CRD's `ProxyConfig`.
    pub fn of(config: &'a ProxyConfig) -> Self {
        Self {
            url: config.proxy_url.as_deref(),
            no_proxy: config.no_proxy.as_deref(),
            from_environment: config.proxy_from_environment,
            connect_header: config.proxy_connect_header.as_ref(),
        }
    }
}

impl Client<'_> {
    /// The client entries of one scrape job (a ServiceMonitor's or PodMonitor's endpoint),
    /// its scrape class's TLS and authorization merged in, TLS material added to
    /// `tls_assets`. `path` names the endpoint in errors (`spec.endpoints[0]`).
    ///
    /// `empty_tls_is_unset`: a `tlsConfig` with nothing set counts as none, so the scrape
    /// class's applies whole (as the operator reads a PodMonitor's `SafeTLSConfig`).
    pub fn entries(
        &self,
        ep: &HttpClient,
        class: Option<&ScrapeClass>,
        path: &str,
        empty_tls_is_unset: bool,
        tls_assets: &mut TlsAssets,
    ) -> Result<Mapping, String> {
        // The scrape class's header applies when the endpoint sets none; its credentials file
        // when the endpoint's header has no credentials.
        let own = ep
            .authorization
            .as_ref()
            .filter(|a| **a != SafeAuthorization::default());
        let class_authz = class.and_then(|c| c.authorization.as_ref());
        let class_file = class_authz.and_then(|c| c.credentials_file.as_deref());
        let authorization = match (own, class_authz) {
            (Some(a), _) => Some(Authz {
                type_: a.type_.as_deref(),
                credentials: a.credentials.as_ref(),
                credentials_file: class_file.filter(|_| a.credentials.is_none()),
            }),
            (None, Some(c)) => Some(Authz {
                type_: c.type_.as_deref(),
                credentials: None,
                credentials_file: class_file,
            }),
            (None, None) => None,
        };
        let settings = Settings {
            basic_auth: ep.basic_auth.as_ref(),
            bearer_token_secret: ep
                .bearer_token_secret
                .as_ref()
                .filter(|s| !s.name.is_empty()),
            bearer_token: None,
            bearer_token_file: ep.bearer_token_file.as_deref(),
            authorization,
            oauth2: ep.oauth2.as_ref(),
            tls: merge_tls(
                ep.tls_config
                    .as_ref()
                    .filter(|t| !(empty_tls_is_unset && **t == TlsConfig::default())),
                class,
            ),
            proxy: Proxy {
                url: ep.proxy_url.as_deref(),
                no_proxy: ep.no_proxy.as_deref(),
                from_environment: ep.proxy_from_environment,
                connect_header: ep.proxy_connect_header.as_ref(),
            },
        };
        self.settings(&settings, path, tls_assets)
    }

    /// The client entries of any client, TLS material added to `tls_assets`; `path` names
    /// the client in errors.
    pub fn settings(
        &self,
        settings: &Settings,
        path: &str,
        tls_assets: &mut TlsAssets,
    ) -> Result<Mapping, String> {
        let mut out = Mapping::new();
        self.proxy(&settings.proxy, path, false, &mut out)?;
        if let Some(oauth2) = settings.oauth2 {
            let value = self.oauth2(oauth2, &format!("{path}.oauth2"), tls_assets)?;
            if (self.supports)(2, 27) {
                out.insert("oauth2".into(), Value::Mapping(value));
            }
        }
        if let Some(tls) = &settings.tls {
            let value = self.tls(tls, &format!("{path}.tlsConfig"), tls_assets)?;
            out.insert("tls_config".into(), Value::Mapping(value));
        }
        if let Some(file) = settings.bearer_token_file.filter(|f| !f.is_empty()) {
            out.insert("bearer_token_file".into(), file.into());
        }
        let lookup = |sel: &SecretKeySelector, what: &str| {
            self.assets
                .secret_key(self.namespace, sel)
                .map(str::to_string)
                .map_err(|e| format!("{path}.{what}: {e}"))
        };
        if let Some(sel) = settings.bearer_token_secret {
            out.insert(
                "bearer_token".into(),
                lookup(sel, "bearerTokenSecret")?.into(),
            );
        }
        if let Some(token) = settings.bearer_token.filter(|t| !t.is_empty()) {
            out.insert("bearer_token".into(), token.into());
        }
        if let Some(basic) = settings.basic_auth {
            let missing = SecretKeySelector::default();
            let username = lookup(
                basic.username.as_ref().unwrap_or(&missing),
                "basicAuth.username",
            )?;
            let password = lookup(
                basic.password.as_ref().unwrap_or(&missing),
                "basicAuth.password",
            )?;
            let mut auth = Mapping::new();
            auth.insert("username".into(), username.into());
            auth.insert("password".into(), password.into());
            out.insert("basic_auth".into(), Value::Mapping(auth));
        }
        let Some(authz) = settings.authorization else {
            return Ok(out);
        };
        // Resolved whatever the version, so a missing Secret rejects as with the operator.
        let credentials = match authz.credentials {
            Some(sel) => Some(lookup(sel, "authorization.credentials")?),
            None => None,
        };
        if (self.supports)(2, 26) {
            let kind = authz.type_.unwrap_or("").trim();
            let kind = if kind.is_empty() { "Bearer" } else { kind };
            if kind.eq_ignore_ascii_case("basic") {
                return Err(format!(
                    "{path}.authorization: type cannot be \"Basic\", use basicAuth instead"
                ));
            }
            let mut auth = Mapping::new();
            auth.insert("type".into(), kind.into());
            match credentials {
                Some(value) => {
                    auth.insert("credentials".into(), value.into());
                }
                None => {
                    if let Some(file) = authz.credentials_file.filter(|f| !f.is_empty()) {
                        auth.insert("credentials_file".into(), file.into());
                    }
                }
            }
            out.insert("authorization".into(), Value::Mapping(auth));
        }
        Ok(out)
    }

    /// `proxy_url`, then (from Prometheus 2.43) `no_proxy`, `proxy_from_environment` and
    /// `proxy_connect_header`; all of them need 2.43 inside `oauth2` (`gated`).
    fn proxy(
        &self,
        proxy: &Proxy,
        path: &str,
        gated: bool,
        out: &mut Mapping,
    ) -> Result<(), String> {
        let recent = (self.supports)(2, 43);
        if let Some(url) = proxy.url.filter(|_| recent || !gated) {
            out.insert("proxy_url".into(), url.into());
        }
        let mut headers = Mapping::new();
        for (name, selectors) in proxy.connect_header.into_iter().flatten() {
            let mut values = Vec::new();
            for (i, sel) in selectors.iter().enumerate() {
                let value = self
                    .assets
                    .secret_key(self.namespace, sel)
                    .map_err(|e| format!("{path}.proxyConnectHeader[{name}][{i}]: {e}"))?;
                values.push(Value::from(value));
            }
            headers.insert(name.as_str().into(), Value::Sequence(values));
        }
        if !recent {
            return Ok(());
        }
        if let Some(hosts) = proxy.no_proxy {
            out.insert("no_proxy".into(), hosts.into());
        }
        if let Some(from_env) = proxy.from_environment {
            out.insert("proxy_from_environment".into(), from_env.into());
        }
        if proxy.connect_header.is_some() {
            out.insert("proxy_connect_header".into(), Value::Mapping(headers));
        }
        Ok(())
    }

    /// `oauth2`: client id and secret resolved, then scopes, parameters, proxy and TLS.
    fn oauth2(
        &self,
        oauth2: &OAuth2,
        path: &str,
        tls_assets: &mut TlsAssets,
    ) -> Result<Mapping, String> {
        let client_id = self
            .assets
            .key(self.namespace, &oauth2.client_id)
            .map_err(|e| format!("{path}.clientId: {e}"))?;
        let client_secret = self
            .assets
            .secret_key(self.namespace, &oauth2.client_secret)
            .map_err(|e| format!("{path}.clientSecret: {e}"))?;
        let mut out = Mapping::new();
        out.insert("client_id".into(), client_id.into());
        out.insert("client_secret".into(), client_secret.into());
        out.insert("token_url".into(), oauth2.token_url.as_str().into());
        if !oauth2.scopes.is_empty() {
            let scopes = oauth2.scopes.iter().map(|s| s.as_str().into()).collect();
            out.insert("scopes".into(), Value::Sequence(scopes));
        }
        if let Some(params) = oauth2.endpoint_params.as_ref().filter(|p| !p.is_empty()) {
            let params = params
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect();
            out.insert("endpoint_params".into(), Value::Mapping(params));
        }
        let proxy = Proxy::of(&oauth2.proxy);
        self.proxy(&proxy, path, true, &mut out)?;
        if let Some(tls) = &oauth2.tls_config {
            let value = self.tls(tls, &format!("{path}.tlsConfig"), tls_assets)?;
            if (self.supports)(2, 43) {
                out.insert("tls_config".into(), Value::Mapping(value));
            }
        }
        Ok(out)
    }

    /// `tls_config` in the operator's order: material from Secrets and ConfigMaps (as files
    /// in the TLS assets), the name and versions, then the user's own files.
    fn tls(
        &self,
        tls: &TlsConfig,
        path: &str,
        tls_assets: &mut TlsAssets,
    ) -> Result<Mapping, String> {
        let mut out = Mapping::new();
        if let Some(skip) = tls.insecure_skip_verify {
            out.insert("insecure_skip_verify".into(), skip.into());
        }
        let set = |sel: &Option<SecretOrConfigMap>| sel.clone().filter(|s| !s.is_empty());
        if let Some(ca) = set(&tls.ca) {
            let pem = self.material(&ca, &format!("{path}.ca"))?;
            check_ca(pem).map_err(|e| format!("{path}.ca: {e}"))?;
            let file = asset_name(self.namespace, &ca);
            out.insert("ca_file".into(), asset_path(&file).into());
            tls_assets.insert(file, pem.to_string());
        }
        if let (Some(cert), Some(key)) = (set(&tls.cert), &tls.key_secret) {
            let cert_pem = self.material(&cert, &format!("{path}.cert"))?;
            let key_pem = self
                .assets
                .secret_key(self.namespace, key)
                .map_err(|e| format!("{path}.keySecret: {e}"))?;
            check_pair(cert_pem, key_pem)
                .map_err(|e| format!("{path}: cert and keySecret: {e}"))?;
            let cert_file = asset_name(self.namespace, &cert);
            let key_ref = SecretOrConfigMap {
                secret: Some(key.clone()),
                config_map: None,
            };
            let key_file = asset_name(self.namespace, &key_ref);
            out.insert("cert_file".into(), asset_path(&cert_file).into());
            out.insert("key_file".into(), asset_path(&key_file).into());
            tls_assets.insert(cert_file, cert_pem.to_string());
            tls_assets.insert(key_file, key_pem.to_string());
        }
        if let Some(name) = tls.server_name.as_deref().filter(|n| !n.is_empty()) {
            out.insert("server_name".into(), name.into());
        }
        if let Some(min) = tls
            .min_version
            .as_deref()
            .filter(|_| (self.supports)(2, 35))
        {
            out.insert("min_version".into(), min.into());
        }
        if let Some(max) = tls
            .max_version
            .as_deref()
            .filter(|_| (self.supports)(2, 41))
        {
            out.insert("max_version".into(), max.into());
        }
        for (key, file) in [
            ("ca_file", &tls.ca_file),
            ("cert_file", &tls.cert_file),
            ("key_file", &tls.key_file),
        ] {
            if let Some(file) = file.as_deref().filter(|f| !f.is_empty()) {
                out.insert(key.into(), file.into());
            }
        }
        Ok(out)
    }

    /// A PEM value from a Secret or ConfigMap; an empty one is refused (the operator would
    /// point the config at a file it never writes).
    fn material(&self, sel: &SecretOrConfigMap, path: &str) -> Result<&str, String> {
        let pem = self
            .assets
            .key(self.namespace, sel)
            .map_err(|e| format!("{path}: {e}"))?;
        if pem.trim().is_empty() {
            return Err(format!("{path}: the value is empty"));
        }
        Ok(pem)
    }
}

/// An endpoint's TLS settings with its scrape class's: the class's whole when the endpoint
/// has none; otherwise the class's files fill in what the endpoint leaves unset.
fn merge_tls(own: Option<&TlsConfig>, class: Option<&ScrapeClass>) -> Option<TlsConfig> {
    let class_tls = class.and_then(|c| c.tls_config.as_ref());
    let (mut tls, class_tls) = match (own, class_tls) {
        (None, class_tls) => return class_tls.cloned(),
        (Some(own), None) => return Some(own.clone()),
        (Some(own), Some(class_tls)) => (own.clone(), class_tls),
    };
    let unset = |f: &Option<String>| f.as_deref().is_none_or(str::is_empty);
    let no_ref = |r: &Option<SecretOrConfigMap>| r.as_ref().is_none_or(SecretOrConfigMap::is_empty);
    if unset(&tls.ca_file) && no_ref(&tls.ca) {
        tls.ca_file = class_tls.ca_file.clone();
    }
    if unset(&tls.cert_file) && no_ref(&tls.cert) {
        tls.cert_file = class_tls.cert_file.clone();
    }
    if unset(&tls.key_file) && tls.key_secret.is_none() {
        tls.key_file = class_tls.key_file.clone();
    }
    Some(tls)
}

/// The operator's file name for a TLS asset: `<0 (Secret) or 1 (ConfigMap)>_<namespace>_<name>_<key>`.
pub fn asset_name(namespace: &str, sel: &SecretOrConfigMap) -> String {
    let (kind, name, key) = match (&sel.secret, &sel.config_map) {
        (Some(s), _) => (Kind::Secret, s.name.as_str(), s.key.as_str()),
        (None, Some(cm)) => (Kind::ConfigMap, cm.name.as_str(), cm.key.as_str()),
        (None, None) => (Kind::Secret, "", ""),
    };
    let source = match kind {
        Kind::Secret => 0,
        Kind::ConfigMap => 1,
    };
    format!("{source}_{namespace}_{name}_{key}")
}

fn asset_path(file: &str) -> String {
    format!("{TLS_ASSETS_DIR}/{file}")
}

/// Why TLS material is refused before it is published. The checks are Go's, as the
/// operator runs them: `x509.ParseCertificate` on the CA's first PEM block, and
/// `tls.X509KeyPair` on a client certificate and key. So X.509 v1 certificates (what
/// `openssl x509 -req` makes without extensions) are accepted, as Go accepts them.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// No PEM block at all.
    #[error("no PEM data")]
    NoPem,
    /// PEM that does not decode.
    #[error("the PEM does not decode: {0}")]
    Pem(rustls::pki_types::pem::Error),
    /// The CA's first PEM block is something else.
    #[error("the first PEM block is not a certificate")]
    NotACertificate,
    /// No certificate in `cert`.
    #[error("no PEM certificate in cert")]
    NoCertificate,
    /// No private key in `keySecret`.
    #[error("no PEM private key in keySecret")]
    NoKey,
    /// A certificate that does not parse as X.509.
    #[error("the certificate does not parse: {0}")]
    Unparsable(String),
    /// A private key this process cannot load (Go may: an RSA key under 2048 bits, or an
    /// elliptic curve other than P-256 and P-384).
    #[error("the private key cannot be loaded: {0}")]
    BadKey(rustls::Error),
    /// The certificate is not for this key.
    #[error(
        "the certificate and key do not form a pair: the certificate's public key is not the key's"
    )]
    NotAPair,
}

/// The first PEM block of `pem` (Go's `pem.Decode`): its kind and contents.
fn first_block(pem: &str) -> Result<(SectionKind, Vec<u8>), PemError> {
    rustls::pki_types::pem::from_buf(&mut pem.as_bytes())
        .map_err(PemError::Pem)?
        .ok_or(PemError::NoPem)
}

/// A certificate's `SubjectPublicKeyInfo`, DER, parsed as Go's `x509.ParseCertificate` does
/// (any version).
fn public_key_info(der: &[u8]) -> Result<Vec<u8>, PemError> {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|e| PemError::Unparsable(e.to_string()))?;
    Ok(cert.tbs_certificate.subject_pki.raw.to_vec())
}

/// A CA bundle's first PEM block must be a certificate that parses, as the operator checks
/// it (Prometheus itself skips bad blocks after it).
fn check_ca(pem: &str) -> Result<(), PemError> {
    match first_block(pem)? {
        (SectionKind::Certificate, der) => public_key_info(&der).map(drop),
        _ => Err(PemError::NotACertificate),
    }
}

/// A client certificate must parse and be for its private key (Go's `tls.X509KeyPair`: the
/// first CERTIFICATE block, and the first private-key block in PKCS#1, PKCS#8 or SEC1 form).
fn check_pair(cert: &str, key: &str) -> Result<(), PemError> {
    let cert = CertificateDer::pem_slice_iter(cert.as_bytes())
        .find_map(Result::ok)
        .ok_or(PemError::NoCertificate)?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|_| PemError::NoKey)?;
    let provider = rustls::crypto::ring::default_provider();
    // The certificate parsed whole (as Go's `X509KeyPair` parses it), then the pair checked
    // as the sidecar checks its own.
    key_pair::signing_key(&public_key_info(&cert)?, key, &provider).map_err(|e| match e {
        KeyError::Unusable(e) => PemError::BadKey(e),
        KeyError::NotAPair => PemError::NotAPair,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};

    /// A self-signed certificate and its key, made once with
    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=test`.
    const CERT: &str = include_str!("testdata/cert.pem");
    const KEY: &str = include_str!("testdata/key.pem");
    /// A second key, which does not match `CERT`.
    const OTHER_KEY: &str = include_str!("testdata/other-key.pem");

    fn assets() -> Assets {
        let mut assets = Assets::default();
        let mut s = Secret::default();
        s.metadata.namespace = Some("a".into());
        s.metadata.name = Some("tls".into());
        s.string_data = Some(BTreeMap::from([
            ("tls.crt".into(), CERT.into()),
            ("tls.key".into(), KEY.into()),
            ("other.key".into(), OTHER_KEY.into()),
            (
                "junk".into(),
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
            ),
            ("id".into(), "client".into()),
            ("secret".into(), "s3cr3t".into()),
        ]));
        assets.insert_secret(&s);
        let mut cm = ConfigMap::default();
        cm.metadata.namespace = Some("a".into());
        cm.metadata.name = Some("ca".into());
        cm.data = Some(BTreeMap::from([
            ("ca.crt".into(), CERT.into()),
            ("empty".into(), String::new()),
        ]));
        assets.insert_config_map(&cm);
        assets
    }

    fn render(
        ep: &str,
        supports: &dyn Fn(u64, u64) -> bool,
    ) -> Result<(String, TlsAssets), String> {
        let assets = assets();
        let client = Client {
            namespace: "a",
            assets: &assets,
            supports,
        };
        let ep: HttpClient = serde_yaml_ng::from_str(ep).unwrap();
        let mut tls = TlsAssets::new();
        let out = client.entries(&ep, None, "spec.endpoints[0]", false, &mut tls)?;
        Ok((serde_yaml_ng::to_string(&out).unwrap(), tls))
    }

    const ALL: &dyn Fn(u64, u64) -> bool = &|_, _| true;

    #[test]
    fn tls_material_becomes_asset_files() {
        let (yaml, tls) = render(
            "{tlsConfig: {ca: {configMap: {name: ca, key: ca.crt}}, cert: {secret: {name: tls, key: tls.crt}}, keySecret: {name: tls, key: tls.key}, serverName: x}}",
            ALL,
        )
        .unwrap();
        assert_eq!(
            yaml,
            "tls_config:\n  ca_file: /etc/prometheus/certs/1_a_ca_ca.crt\n  cert_file: /etc/prometheus/certs/0_a_tls_tls.crt\n  key_file: /etc/prometheus/certs/0_a_tls_tls.key\n  server_name: x\n"
        );
        assert_eq!(
            tls.keys().collect::<Vec<_>>(),
            ["0_a_tls_tls.crt", "0_a_tls_tls.key", "1_a_ca_ca.crt"]
        );
        assert_eq!(tls["0_a_tls_tls.key"], KEY);
    }

    #[test]
    fn bad_material_is_refused_by_reference() {
        let cases = [
            (
                "{tlsConfig: {ca: {secret: {name: tls, key: junk}}}}",
                "spec.endpoints[0].tlsConfig.ca: the certificate does not parse",
            ),
            (
                "{tlsConfig: {ca: {secret: {name: tls, key: id}}}}",
                "spec.endpoints[0].tlsConfig.ca: no PEM data",
            ),
            (
                "{tlsConfig: {ca: {configMap: {name: ca, key: empty}}}}",
                "spec.endpoints[0].tlsConfig.ca: the value is empty",
            ),
            (
                "{tlsConfig: {ca: {configMap: {name: ca, key: nope}}}}",
                "spec.endpoints[0].tlsConfig.ca: ConfigMap a/ca has no key \"nope\"",
            ),
            (
                "{tlsConfig: {cert: {secret: {name: tls, key: tls.crt}}, keySecret: {name: tls, key: other.key}}}",
                "spec.endpoints[0].tlsConfig: cert and keySecret: the certificate and key do not form a pair",
            ),
            (
                "{tlsConfig: {cert: {secret: {name: tls, key: tls.crt}}, keySecret: {name: tls, key: tls.crt}}}",
                "spec.endpoints[0].tlsConfig: cert and keySecret: no PEM private key",
            ),
            (
                "{oauth2: {clientId: {secret: {name: tls, key: id}}, clientSecret: {name: gone, key: x}, tokenUrl: 'https://t'}}",
                "spec.endpoints[0].oauth2.clientSecret: Secret a/gone not found",
            ),
            (
                "{proxyUrl: 'http://p', proxyConnectHeader: {X-Auth: [{name: tls, key: nope}]}}",
                "spec.endpoints[0].proxyConnectHeader[X-Auth][0]: Secret a/tls has no key \"nope\"",
            ),
        ];
        for (ep, want) in cases {
            let err = render(ep, ALL).unwrap_err();
            assert!(err.starts_with(want), "{ep}: {err}");
            assert!(!err.contains("s3cr3t") && !err.contains("BEGIN"), "{err}");
        }
    }

    #[test]
    fn oauth2_and_proxy_follow_the_operator() {
        let ep = "{proxyUrl: 'http://p:3128', proxyConnectHeader: {X-Auth: [{name: tls, key: secret}]}, oauth2: {clientId: {secret: {name: tls, key: id}}, clientSecret: {name: tls, key: secret}, tokenUrl: 'https://t/token', scopes: [a, b], endpointParams: {aud: x}, proxyFromEnvironment: true, tlsConfig: {insecureSkipVerify: true}}, authorization: {credentials: {name: tls, key: secret}}}";
        let (yaml, _) = render(ep, ALL).unwrap();
        assert_eq!(
            yaml,
            "proxy_url: http://p:3128\nproxy_connect_header:\n  X-Auth:\n  - s3cr3t\noauth2:\n  client_id: client\n  client_secret: s3cr3t\n  token_url: https://t/token\n  scopes:\n  - a\n  - b\n  endpoint_params:\n    aud: x\n  proxy_from_environment: true\n  tls_config:\n    insecure_skip_verify: true\nauthorization:\n  type: Bearer\n  credentials: s3cr3t\n"
        );
        // Prometheus 2.42: no proxy extras, and nothing of them inside oauth2.
        let old = |major, minor| (major, minor) < (2, 43);
        let (yaml, _) = render(ep, &old).unwrap();
        assert_eq!(
            yaml,
            "proxy_url: http://p:3128\noauth2:\n  client_id: client\n  client_secret: s3cr3t\n  token_url: https://t/token\n  scopes:\n  - a\n  - b\n  endpoint_params:\n    aud: x\nauthorization:\n  type: Bearer\n  credentials: s3cr3t\n"
        );
    }

    #[test]
    fn credentials_follow_the_operator() {
        let (yaml, _) = render(
            "{port: web, bearerTokenSecret: {name: tls, key: secret}, basicAuth: {username: {name: tls, key: id}, password: {name: tls, key: secret}}, authorization: {credentials: {name: tls, key: secret}}}",
            ALL,
        )
        .unwrap();
        assert_eq!(
            yaml,
            "bearer_token: s3cr3t\nbasic_auth:\n  username: client\n  password: s3cr3t\nauthorization:\n  type: Bearer\n  credentials: s3cr3t\n"
        );
        let err = render(
            "{authorization: {type: Basic, credentials: {name: tls, key: secret}}}",
            ALL,
        )
        .unwrap_err();
        assert!(err.contains("use basicAuth"), "{err}");
        let err = render("{basicAuth: {username: {name: tls, key: id}}}", ALL).unwrap_err();
        assert!(
            err.starts_with("spec.endpoints[0].basicAuth.password"),
            "{err}"
        );
    }

    /// Made the common way: `openssl x509 -req` without extensions gives X.509 v1
    /// certificates (a leaf for an RSA key, one for an EC key, a self-signed CA).
    const V1_RSA: &str = include_str!("testdata/v1-rsa.crt");
    const V1_RSA_PKCS1: &str = include_str!("testdata/v1-rsa-pkcs1.key");
    const V1_RSA_PKCS8: &str = include_str!("testdata/v1-rsa-pkcs8.key");
    const V1_EC: &str = include_str!("testdata/v1-ec.crt");
    const V1_EC_SEC1: &str = include_str!("testdata/v1-ec-sec1.key");
    const V1_CA: &str = include_str!("testdata/v1-ca.crt");

    #[test]
    fn certificates_and_keys_are_read_as_go_reads_them() {
        // v1 certificates, with PKCS#1, PKCS#8 and SEC1 keys: accepted, as tls.X509KeyPair
        // accepts them; a v3 pair with a PKCS#8 EC key too.
        for (cert, key) in [
            (V1_RSA, V1_RSA_PKCS1),
            (V1_RSA, V1_RSA_PKCS8),
            (V1_EC, V1_EC_SEC1),
            (CERT, KEY),
        ] {
            check_pair(cert, key).unwrap_or_else(|e| panic!("{e}: {cert}"));
        }
        // A key that is not the certificate's, of the same kind or another.
        for (cert, key) in [(V1_RSA, V1_EC_SEC1), (V1_EC, KEY), (CERT, V1_RSA_PKCS8)] {
            assert!(
                matches!(check_pair(cert, key), Err(PemError::NotAPair)),
                "{cert}"
            );
        }
        // The certificate is the first CERTIFICATE block (a key before it is skipped), the
        // key the first key block (a certificate before it is skipped), as in Go.
        let cert_after_key = format!("{V1_RSA_PKCS8}{V1_RSA}");
        let key_after_cert = format!("{V1_RSA}{V1_RSA_PKCS1}");
        check_pair(&cert_after_key, &key_after_cert).unwrap();
        assert!(matches!(
            check_pair(V1_RSA_PKCS1, V1_RSA_PKCS1),
            Err(PemError::NoCertificate)
        ));
        assert!(matches!(check_pair(V1_RSA, V1_RSA), Err(PemError::NoKey)));

        // A CA: its first block must be a certificate that parses (v1 too); a bad block
        // after a good one is Prometheus's to skip, as the operator lets it through.
        check_ca(V1_CA).unwrap();
        check_ca(&format!("{V1_CA}{CERT}")).unwrap();
        let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        check_ca(&format!("{V1_CA}{junk}")).unwrap();
        assert!(matches!(
            check_ca(&format!("{junk}{V1_CA}")),
            Err(PemError::Unparsable(_))
        ));
        assert!(matches!(
            check_ca(&format!("{V1_RSA_PKCS8}{V1_CA}")),
            Err(PemError::NotACertificate)
        ));
        assert!(matches!(check_ca("not PEM"), Err(PemError::NoPem)));
    }
}
