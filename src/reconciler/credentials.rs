//! Credentials from Secrets: the values a ServiceMonitor's `basicAuth`, `bearerTokenSecret`
//! and `authorization` reference, resolved as prometheus-operator resolves them (a key of a
//! Secret in the ServiceMonitor's namespace; a missing Secret or key rejects the
//! ServiceMonitor, never a job without its credentials), and written into the config inline,
//! as the operator writes them (which is why the config is a Secret).
//!
//! Errors name the reference (`Secret team-a/gerrit has no key "token"`), never a value.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use super::crd::{Endpoint, SecretKeySelector, ServiceMonitor};

/// Secret contents rendering may read, by `(namespace, name)`: their keys and values, or why
/// the Secret could not be read.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    found: HashMap<(String, String), Result<BTreeMap<String, String>, String>>,
}

impl Secrets {
    /// Records a Secret's data (values must be UTF-8 text to go into a YAML config).
    pub fn insert(&mut self, secret: &Secret) {
        let id = (secret.namespace().unwrap_or_default(), secret.name_any());
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
        self.found.insert(id, Ok(data));
    }

    /// Records that a Secret could not be read, and why (not found, forbidden).
    pub fn unreadable(&mut self, namespace: &str, name: &str, why: String) {
        self.found
            .insert((namespace.to_string(), name.to_string()), Err(why));
    }

    /// Drops a Secret (it changed); returns whether it was there.
    pub fn forget(&mut self, namespace: &str, name: &str) -> bool {
        self.found
            .remove(&(namespace.to_string(), name.to_string()))
            .is_some()
    }

    /// Whether this Secret was looked up already.
    pub fn contains(&self, namespace: &str, name: &str) -> bool {
        self.found
            .contains_key(&(namespace.to_string(), name.to_string()))
    }

    /// The value of `sel`'s key in its Secret in `namespace`.
    pub fn value(&self, namespace: &str, sel: &SecretKeySelector) -> Result<&str, String> {
        let id = (namespace.to_string(), sel.name.clone());
        match self.found.get(&id) {
            None => Err(format!("Secret {namespace}/{} not found", sel.name)),
            Some(Err(why)) => Err(format!("Secret {namespace}/{}: {why}", sel.name)),
            Some(Ok(data)) => data.get(&sel.key).map(String::as_str).ok_or_else(|| {
                format!(
                    "Secret {namespace}/{} has no key {:?} (or its value is not UTF-8 text)",
                    sel.name, sel.key
                )
            }),
        }
    }
}

/// The Secrets a ServiceMonitor's endpoints reference, as `(namespace, name)`.
pub fn references(sm: &ServiceMonitor) -> BTreeSet<(String, String)> {
    let ns = sm.namespace().unwrap_or_default();
    sm.spec
        .endpoints
        .iter()
        .flat_map(selectors)
        .filter(|sel| !sel.name.is_empty())
        .map(|sel| (ns.clone(), sel.name.clone()))
        .collect()
}

fn selectors(ep: &Endpoint) -> Vec<&SecretKeySelector> {
    let mut out = Vec::new();
    if let Some(basic) = &ep.basic_auth {
        out.extend(basic.username.iter());
        out.extend(basic.password.iter());
    }
    out.extend(ep.bearer_token_secret.iter());
    if let Some(auth) = &ep.authorization {
        out.extend(auth.credentials.iter());
    }
    out
}

/// The credential entries of one endpoint's job, in the operator's order (`bearer_token`,
/// `basic_auth`, `authorization`), with values resolved from `secrets`. `path` names the
/// endpoint in errors (`spec.endpoints[0]`).
pub fn entries(
    namespace: &str,
    ep: &Endpoint,
    path: &str,
    secrets: &Secrets,
) -> Result<Vec<(&'static str, serde_yaml_ng::Value)>, String> {
    use serde_yaml_ng::{Mapping, Value};
    let lookup = |sel: &SecretKeySelector, what: &str| {
        secrets
            .value(namespace, sel)
            .map(str::to_string)
            .map_err(|e| format!("{path}.{what}: {e}"))
    };
    let mut out = Vec::new();
    if let Some(sel) = ep
        .bearer_token_secret
        .as_ref()
        .filter(|s| !s.name.is_empty())
    {
        out.push(("bearer_token", lookup(sel, "bearerTokenSecret")?.into()));
    }
    if let Some(basic) = &ep.basic_auth {
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
        out.push(("basic_auth", Value::Mapping(auth)));
    }
    if let Some(authz) = &ep.authorization {
        let kind = authz.type_.as_deref().unwrap_or("").trim();
        let kind = if kind.is_empty() { "Bearer" } else { kind };
        if kind.eq_ignore_ascii_case("basic") {
            return Err(format!(
                "{path}.authorization: type cannot be \"Basic\", use basicAuth instead"
            ));
        }
        let mut auth = Mapping::new();
        auth.insert("type".into(), kind.into());
        if let Some(sel) = &authz.credentials {
            auth.insert(
                "credentials".into(),
                lookup(sel, "authorization.credentials")?.into(),
            );
        }
        out.push(("authorization", Value::Mapping(auth)));
    }
    Ok(out)
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
        let mut secrets = Secrets::default();
        secrets.insert(&secret(
            "a",
            "gerrit",
            &[("user", b"bot"), ("token", b"s3cr3t"), ("bin", b"\xff")],
        ));
        secrets.unreadable("a", "locked", "forbidden".into());
        assert_eq!(secrets.value("a", &sel("gerrit", "token")), Ok("s3cr3t"));
        let errors = [
            secrets.value("a", &sel("gerrit", "nope")).unwrap_err(),
            secrets.value("a", &sel("gerrit", "bin")).unwrap_err(),
            secrets.value("a", &sel("other", "x")).unwrap_err(),
            secrets.value("b", &sel("gerrit", "token")).unwrap_err(),
            secrets.value("a", &sel("locked", "x")).unwrap_err(),
        ];
        assert!(errors[0].contains("Secret a/gerrit has no key \"nope\""));
        assert!(errors[2].contains("Secret a/other not found"));
        assert!(errors[4].contains("forbidden"));
        assert!(errors.iter().all(|e| !e.contains("s3cr3t")));
    }

    #[test]
    fn entries_follow_the_operator() {
        let mut secrets = Secrets::default();
        secrets.insert(&secret("a", "s", &[("user", b"bot"), ("token", b"t0k")]));
        let ep: Endpoint = serde_yaml_ng::from_str(
            "{port: web, bearerTokenSecret: {name: s, key: token}, basicAuth: {username: {name: s, key: user}, password: {name: s, key: token}}, authorization: {credentials: {name: s, key: token}}}",
        )
        .unwrap();
        let got = entries("a", &ep, "spec.endpoints[0]", &secrets).unwrap();
        let map: serde_yaml_ng::Mapping = got.into_iter().map(|(k, v)| (k.into(), v)).collect();
        let text = serde_yaml_ng::to_string(&map).unwrap();
        assert_eq!(
            text,
            "bearer_token: t0k\nbasic_auth:\n  username: bot\n  password: t0k\nauthorization:\n  type: Bearer\n  credentials: t0k\n"
        );
        let basic: Endpoint = serde_yaml_ng::from_str(
            "{authorization: {type: Basic, credentials: {name: s, key: token}}}",
        )
        .unwrap();
        assert!(
            entries("a", &basic, "e", &secrets)
                .unwrap_err()
                .contains("use basicAuth")
        );
        let half: Endpoint =
            serde_yaml_ng::from_str("{basicAuth: {username: {name: s, key: user}}}").unwrap();
        let err = entries("a", &half, "spec.endpoints[0]", &secrets).unwrap_err();
        assert!(
            err.starts_with("spec.endpoints[0].basicAuth.password"),
            "{err}"
        );
    }
}
