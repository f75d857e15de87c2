//! The Secrets and ConfigMaps a ServiceMonitor references (credentials, OAuth 2.0 client ids,
//! proxy headers, TLS material), resolved as prometheus-operator resolves them: a key of an
//! object in the ServiceMonitor's namespace. A missing object or key rejects the
//! ServiceMonitor, never a job without its credentials.
//!
//! Errors name the reference (`Secret team-a/gerrit has no key "token"`), never a value.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;

use super::crd::{
    ConfigMapKeySelector, HttpClient, PodMonitor, Probe, Prometheus, ScrapeConfig,
    SecretKeySelector, SecretOrConfigMap, ServiceMonitor, TlsConfig,
};

/// The two kinds of object a ServiceMonitor can take values from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A `v1` Secret.
    Secret,
    /// A `v1` ConfigMap.
    ConfigMap,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Secret => "Secret",
            Self::ConfigMap => "ConfigMap",
        })
    }
}

/// A referenced object: kind, namespace, name.
pub type ObjectRef = (Kind, String, String);

/// Why a referenced object could not be read: a definite answer, which rejects what
/// references it (a failure that may pass fails the reconcile instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// It does not exist.
    NotFound,
    /// The reconciler may not read it: the API server's message.
    Forbidden(String),
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound => f.write_str("not found"),
            Self::Forbidden(message) => write!(f, "forbidden: {message}"),
        }
    }
}

/// Why a referenced key has no value to render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The object was not read (offline, it is not among the files).
    #[error("{kind} {namespace}/{name} not found")]
    NotRead {
        /// Secret or ConfigMap.
        kind: Kind,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The object could not be read.
    #[error("{kind} {namespace}/{name}: {why}")]
    Unreadable {
        /// Secret or ConfigMap.
        kind: Kind,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Why.
        why: Unreadable,
    },
    /// The object has no such key (or, in a Secret, its value is not text).
    #[error("{kind} {namespace}/{name} has no key {key:?}{}",
            if *kind == Kind::Secret { " (or its value is not UTF-8 text)" } else { "" })]
    NoKey {
        /// Secret or ConfigMap.
        kind: Kind,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The key.
        key: String,
    },
    /// A Secret-or-ConfigMap reference names neither.
    #[error("neither a Secret nor a ConfigMap is set")]
    NoSource,
}

/// The contents of referenced Secrets and ConfigMaps that rendering may read: their keys and
/// text values, or why the object could not be read.
#[derive(Debug, Default, Clone)]
pub struct Assets {
    found: HashMap<ObjectRef, Result<BTreeMap<String, String>, Unreadable>>,
}

impl Assets {
    /// Records a Secret's data (values must be UTF-8 text to go into a YAML config).
    pub fn insert_secret(&mut self, secret: &Secret) {
        let mut data = BTreeMap::new();
        for (key, value) in secret.data.iter().flatten() {
            // Kept out of the map when not text: the lookup then says so, by key.
            if let Ok(text) = String::from_utf8(value.0.clone()) {
                data.insert(key.clone(), text);
            }
        }
        for (key, value) in secret.string_data.iter().flatten() {
            data.insert(key.clone(), value.clone());
        }
        let id = (
            Kind::Secret,
            secret.namespace().unwrap_or_default(),
            secret.name_any(),
        );
        self.found.insert(id, Ok(data));
    }

    /// Records a ConfigMap's `data` (as the operator, `binaryData` is not read).
    pub fn insert_config_map(&mut self, config_map: &ConfigMap) {
        let id = (
            Kind::ConfigMap,
            config_map.namespace().unwrap_or_default(),
            config_map.name_any(),
        );
        self.found
            .insert(id, Ok(config_map.data.clone().unwrap_or_default()));
    }

    /// Records that an object could not be read, and why.
    pub fn unreadable(&mut self, id: ObjectRef, why: Unreadable) {
        self.found.insert(id, Err(why));
    }

    /// Drops an object (it changed); returns whether it was there.
    pub fn forget(&mut self, id: &ObjectRef) -> bool {
        self.found.remove(id).is_some()
    }

    /// Drops every object of `kind` (their watch failed, so no change of theirs would be
    /// seen): each is read again when next needed.
    pub fn forget_kind(&mut self, kind: Kind) {
        self.found.retain(|(k, _, _), _| *k != kind);
    }

    /// Whether this object was looked up already.
    pub fn contains(&self, id: &ObjectRef) -> bool {
        self.found.contains_key(id)
    }

    fn lookup(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<&str, LookupError> {
        let id = (kind, namespace.to_string(), name.to_string());
        let found = self.found.get(&id);
        // The key's names go into the error, if there is one: no second copy per lookup.
        let (_, namespace, name) = id;
        match found {
            None => Err(LookupError::NotRead {
                kind,
                namespace,
                name,
            }),
            Some(Err(why)) => Err(LookupError::Unreadable {
                kind,
                namespace,
                name,
                why: why.clone(),
            }),
            Some(Ok(data)) => data
                .get(key)
                .map(String::as_str)
                .ok_or_else(|| LookupError::NoKey {
                    kind,
                    namespace,
                    name,
                    key: key.to_string(),
                }),
        }
    }

    /// The value of `sel`'s key in its Secret in `namespace`.
    pub fn secret_key(
        &self,
        namespace: &str,
        sel: &SecretKeySelector,
    ) -> Result<&str, LookupError> {
        self.lookup(Kind::Secret, namespace, &sel.name, &sel.key)
    }

    /// The value of `sel`'s key in its ConfigMap in `namespace`.
    pub fn config_map_key(
        &self,
        namespace: &str,
        sel: &ConfigMapKeySelector,
    ) -> Result<&str, LookupError> {
        self.lookup(Kind::ConfigMap, namespace, &sel.name, &sel.key)
    }

    /// The value a Secret-or-ConfigMap reference points at (validation has checked that
    /// exactly one is set).
    pub fn key(&self, namespace: &str, sel: &SecretOrConfigMap) -> Result<&str, LookupError> {
        match (&sel.secret, &sel.config_map) {
            (Some(secret), _) => self.secret_key(namespace, secret),
            (None, Some(cm)) => self.config_map_key(namespace, cm),
            (None, None) => Err(LookupError::NoSource),
        }
    }
}

/// The Secrets and ConfigMaps a ServiceMonitor's endpoints reference.
pub fn references(sm: &ServiceMonitor) -> BTreeSet<ObjectRef> {
    let ns = sm.namespace().unwrap_or_default();
    let mut out = BTreeSet::new();
    for ep in &sm.spec.endpoints {
        client_references(&ep.client, &ns, &mut out);
    }
    out
}

/// The Secrets and ConfigMaps a PodMonitor's endpoints reference.
pub fn pod_monitor_references(pm: &PodMonitor) -> BTreeSet<ObjectRef> {
    let ns = pm.namespace().unwrap_or_default();
    let mut out = BTreeSet::new();
    for ep in &pm.spec.pod_metrics_endpoints {
        client_references(&ep.client, &ns, &mut out);
    }
    out
}

/// The Secrets and ConfigMaps a Probe references (its client's, and its prober proxy's
/// headers).
pub fn probe_references(probe: &Probe) -> BTreeSet<ObjectRef> {
    let ns = probe.namespace().unwrap_or_default();
    let mut out = BTreeSet::new();
    client_references(&probe.spec.client, &ns, &mut out);
    for sel in headers(&probe.spec.prober.proxy.proxy_connect_header) {
        if !sel.name.is_empty() {
            out.insert((Kind::Secret, ns.clone(), sel.name.clone()));
        }
    }
    out
}

/// The Secrets and ConfigMaps a ScrapeConfig references: each of its clients' (its own and
/// its discovery configs'), and the Consul tokens.
pub fn scrape_config_references(sc: &ScrapeConfig) -> BTreeSet<ObjectRef> {
    let ns = sc.namespace().unwrap_or_default();
    let mut out = BTreeSet::new();
    for (_, client) in sc.spec.clients() {
        client_references(client, &ns, &mut out);
    }
    let tokens = sc.spec.consul_sd_configs.iter();
    for sel in tokens.flat_map(|c| c.token_ref.iter()) {
        if !sel.name.is_empty() {
            out.insert((Kind::Secret, ns.clone(), sel.name.clone()));
        }
    }
    out
}

/// Adds the Secrets and ConfigMaps (in `ns`) one HTTP client references to `out`: the one
/// list of an [`HttpClient`]'s references, whatever object it is part of.
pub fn client_references(client: &HttpClient, ns: &str, out: &mut BTreeSet<ObjectRef>) {
    let mut add = |kind: Kind, name: &str| {
        if !name.is_empty() {
            out.insert((kind, ns.to_string(), name.to_string()));
        }
    };
    for sel in secret_selectors(client) {
        add(Kind::Secret, &sel.name);
    }
    let tls = client.tls_config.iter();
    let oauth2_tls = client.oauth2.iter().flat_map(|o| o.tls_config.iter());
    let mut either: Vec<&SecretOrConfigMap> = tls
        .chain(oauth2_tls)
        .flat_map(|t: &TlsConfig| t.ca.iter().chain(t.cert.iter()))
        .collect();
    either.extend(client.oauth2.iter().map(|o| &o.client_id));
    for sel in either {
        if let Some(s) = &sel.secret {
            add(Kind::Secret, &s.name);
        }
        if let Some(cm) = &sel.config_map {
            add(Kind::ConfigMap, &cm.name);
        }
    }
}

/// The Secrets and ConfigMaps a Prometheus's remote writes and reads, Alertmanagers and
/// `additional*` keys reference (all in its own namespace).
pub fn prometheus_references(p: &Prometheus) -> BTreeSet<ObjectRef> {
    let ns = p.namespace().unwrap_or_default();
    let spec = &p.spec;
    let mut out = BTreeSet::new();
    let mut secret = |sel: &SecretKeySelector| {
        if !sel.name.is_empty() {
            out.insert((Kind::Secret, ns.clone(), sel.name.clone()));
        }
    };
    let mut either = Vec::new();
    let no_oauth2 = None;
    let clients = spec
        .remote_write
        .iter()
        .map(|rw| {
            let credentials = rw
                .authorization
                .as_ref()
                .and_then(|a| a.credentials.as_ref());
            (
                &rw.basic_auth,
                credentials,
                &rw.oauth2,
                &rw.tls_config,
                &rw.proxy.proxy_connect_header,
            )
        })
        .chain(spec.remote_read.iter().map(|rr| {
            let credentials = rr
                .authorization
                .as_ref()
                .and_then(|a| a.credentials.as_ref());
            (
                &rr.basic_auth,
                credentials,
                &rr.oauth2,
                &rr.tls_config,
                &rr.proxy.proxy_connect_header,
            )
        }))
        .chain(
            spec.alerting
                .iter()
                .flat_map(|a| &a.alertmanagers)
                .map(|am| {
                    let credentials = am
                        .authorization
                        .as_ref()
                        .and_then(|a| a.credentials.as_ref());
                    (
                        &am.basic_auth,
                        credentials,
                        &no_oauth2,
                        &am.tls_config,
                        &am.proxy.proxy_connect_header,
                    )
                }),
        );
    for (basic, credentials, oauth2, tls, proxy) in clients {
        if let Some(basic) = basic {
            basic
                .username
                .iter()
                .chain(basic.password.iter())
                .for_each(&mut secret);
        }
        credentials.into_iter().for_each(&mut secret);
        headers(proxy).for_each(&mut secret);
        if let Some(oauth2) = oauth2 {
            secret(&oauth2.client_secret);
            headers(&oauth2.proxy.proxy_connect_header).for_each(&mut secret);
            either.push(&oauth2.client_id);
        }
        for tls in tls
            .iter()
            .chain(oauth2.iter().flat_map(|o| o.tls_config.iter()))
        {
            tls.key_secret.iter().for_each(&mut secret);
            either.extend(tls.ca.iter().chain(tls.cert.iter()));
        }
    }
    [
        &spec.additional_scrape_configs,
        &spec.additional_alert_relabel_configs,
        &spec.additional_alert_manager_configs,
    ]
    .into_iter()
    .flatten()
    .for_each(&mut secret);
    let mut config_maps = Vec::new();
    for sel in either {
        if let Some(s) = &sel.secret {
            secret(s);
        }
        config_maps.extend(sel.config_map.iter().filter(|cm| !cm.name.is_empty()));
    }
    for cm in config_maps {
        out.insert((Kind::ConfigMap, ns.clone(), cm.name.clone()));
    }
    out
}

/// Every Secret key selector of a client (not counting Secret-or-ConfigMap references).
fn secret_selectors(client: &HttpClient) -> Vec<&SecretKeySelector> {
    let mut out = Vec::new();
    if let Some(basic) = &client.basic_auth {
        out.extend(basic.username.iter());
        out.extend(basic.password.iter());
    }
    out.extend(client.bearer_token_secret.iter());
    if let Some(auth) = &client.authorization {
        out.extend(auth.credentials.iter());
    }
    out.extend(headers(&client.proxy_connect_header));
    if let Some(oauth2) = &client.oauth2 {
        out.push(&oauth2.client_secret);
        out.extend(headers(&oauth2.proxy.proxy_connect_header));
        out.extend(oauth2.tls_config.iter().flat_map(|t| t.key_secret.iter()));
    }
    out.extend(client.tls_config.iter().flat_map(|t| t.key_secret.iter()));
    out
}

/// The Secret key selectors of a `proxyConnectHeader`.
fn headers(
    h: &Option<BTreeMap<String, Vec<SecretKeySelector>>>,
) -> impl Iterator<Item = &SecretKeySelector> {
    h.iter().flat_map(|m| m.values().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(ns: &str, name: &str, data: &[(&str, &[u8])]) -> Secret {
        let mut s = Secret::default();
        s.metadata.namespace = Some(ns.into());
        s.metadata.name = Some(name.into());
        s.data = Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                .collect(),
        );
        s
    }

    fn sel(name: &str, key: &str) -> SecretKeySelector {
        SecretKeySelector {
            name: name.into(),
            key: key.into(),
            optional: None,
        }
    }

    #[test]
    fn references_resolve_and_errors_name_the_reference_not_the_value() {
        let mut assets = Assets::default();
        assets.insert_secret(&secret(
            "a",
            "gerrit",
            &[("user", b"bot"), ("token", b"s3cr3t"), ("bin", b"\xff")],
        ));
        let mut cm = ConfigMap::default();
        cm.metadata.namespace = Some("a".into());
        cm.metadata.name = Some("ca".into());
        cm.data = Some(BTreeMap::from([("ca.crt".into(), "PEM".into())]));
        assets.insert_config_map(&cm);
        assets.unreadable(
            (Kind::Secret, "a".into(), "locked".into()),
            Unreadable::Forbidden("secrets \"locked\" is forbidden".into()),
        );
        assert_eq!(
            assets.secret_key("a", &sel("gerrit", "token")),
            Ok("s3cr3t")
        );
        let from_cm = SecretOrConfigMap {
            secret: None,
            config_map: Some(ConfigMapKeySelector {
                name: "ca".into(),
                key: "ca.crt".into(),
                optional: None,
            }),
        };
        assert_eq!(assets.key("a", &from_cm), Ok("PEM"));
        let errors = [
            assets.secret_key("a", &sel("gerrit", "nope")).unwrap_err(),
            assets.secret_key("a", &sel("gerrit", "bin")).unwrap_err(),
            assets.secret_key("a", &sel("other", "x")).unwrap_err(),
            assets.secret_key("b", &sel("gerrit", "token")).unwrap_err(),
            assets.secret_key("a", &sel("locked", "x")).unwrap_err(),
            assets.secret_key("a", &sel("ca", "ca.crt")).unwrap_err(),
        ];
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text[..3],
            [
                "Secret a/gerrit has no key \"nope\" (or its value is not UTF-8 text)",
                "Secret a/gerrit has no key \"bin\" (or its value is not UTF-8 text)",
                "Secret a/other not found",
            ]
        );
        assert!(
            matches!(errors[3], LookupError::NotRead { .. }),
            "namespaces differ"
        );
        assert_eq!(
            text[4],
            "Secret a/locked: forbidden: secrets \"locked\" is forbidden"
        );
        assert!(
            matches!(errors[5], LookupError::NotRead { .. }),
            "kinds differ"
        );
        assert!(text.iter().all(|e| !e.contains("s3cr3t")));
    }

    #[test]
    fn references_cover_every_selector() {
        let sm: ServiceMonitor = serde_yaml_ng::from_str(
            "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: m, namespace: a}\nspec:\n  selector: {}\n  endpoints:\n  - port: web\n    basicAuth: {username: {name: u, key: k}, password: {name: p, key: k}}\n    proxyConnectHeader: {X: [{name: h, key: k}]}\n    tlsConfig: {ca: {configMap: {name: ca, key: k}}, cert: {secret: {name: c, key: k}}, keySecret: {name: key, key: k}}\n  - port: web\n    oauth2: {clientId: {configMap: {name: id, key: k}}, clientSecret: {name: cs, key: k}, tokenUrl: 'http://t', tlsConfig: {ca: {secret: {name: oca, key: k}}}}\n",
        )
        .unwrap();
        let got: Vec<String> = references(&sm)
            .into_iter()
            .map(|(kind, ns, name)| format!("{kind} {ns}/{name}"))
            .collect();
        assert_eq!(
            got,
            [
                "Secret a/c",
                "Secret a/cs",
                "Secret a/h",
                "Secret a/key",
                "Secret a/oca",
                "Secret a/p",
                "Secret a/u",
                "ConfigMap a/ca",
                "ConfigMap a/id",
            ]
        );
    }
}
