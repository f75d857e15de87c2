//! The admin server's `--web-config-file`: Prometheus's exporter-toolkit web configuration,
//! as prometheus-operator hands it to the config reloader (the same file its server gets).
//!
//! Honoured with exporter-toolkit's meaning: `tls_server_config` (`cert_file`, `key_file`,
//! `client_ca_file`, every `client_auth_type`, `min_version`, `max_version`),
//! `basic_auth_users` (bcrypt hashes) and `http_server_config.headers` (the five headers
//! exporter-toolkit allows, with its value checks). `http2` is accepted: the admin server
//! speaks HTTP/1.1 either way. `cipher_suites`, `curve_preferences` and
//! `prefer_server_cipher_suites` are accepted and left to rustls's defaults (AEAD suites with
//! forward secrecy only).
//!
//! Refused, naming the key, so nothing is served with less protection than asked for: what
//! exporter-toolkit itself refuses (unknown keys, an unknown `client_auth_type` or version, a
//! client CA without a client certificate policy, a header it does not allow, a password that
//! is not a bcrypt hash), and what it accepts but promreload does not do: `client_allowed_sans`,
//! a `rate_limit`, and certificates given inline (`cert`, `key`, `client_ca`) rather than as
//! files. Relative paths are relative to the web config file's directory, as in
//! exporter-toolkit. The file is read at start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::admin::{self, BasicAuth, ClientAuth, Protection, Tls, TlsVersion};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    #[serde(default)]
    rate_limit: Option<RawRateLimit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    // Tuning that rustls's defaults already cover.
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    // What exporter-toolkit accepts and promreload refuses.
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    burst: Option<u64>,
    interval: Option<String>,
}

/// The headers exporter-toolkit lets a web config set, and the values it allows (any when
/// empty).
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// What a web config asks of the admin server, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Web {
    /// HTTPS, if asked for.
    pub tls: Option<Tls>,
    /// Basic-auth users and their bcrypt hashes; empty = no basic auth.
    pub users: BTreeMap<String, String>,
    /// Headers set on every response.
    pub headers: Vec<(String, String)>,
}

impl Web {
    /// HTTPS with these files and nothing else.
    pub fn tls(tls: Tls) -> Self {
        Self {
            tls: Some(tls),
            ..Self::default()
        }
    }

    /// Loads the certificate files and prepares the checks (at start).
    pub fn protection(&self) -> Result<Protection, ProtectionError> {
        let tls = self.tls.as_ref().map(admin::TlsFiles::load).transpose()?;
        let basic_auth = BasicAuth::new(self.users.clone())?;
        // The headers were checked by `parse`.
        let headers = self
            .headers
            .iter()
            .filter_map(|(n, v)| {
                Some((
                    HeaderName::from_bytes(n.as_bytes()).ok()?,
                    HeaderValue::from_str(v).ok()?,
                ))
            })
            .collect();
        Ok(Protection {
            tls,
            basic_auth,
            headers,
        })
    }
}

/// Why the admin server cannot be protected as the web config asks: it is not started.
#[derive(Debug, thiserror::Error)]
pub enum ProtectionError {
    /// A certificate, key or CA file is unusable.
    #[error("admin server TLS: {0}")]
    Tls(#[from] admin::TlsError),
    /// A basic-auth hash is unusable.
    #[error(transparent)]
    Hash(#[from] admin::HashError),
}

/// Why a web config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file could not be read.
    #[error("{0}")]
    Read(#[from] std::io::Error),
    /// Not YAML, or an unknown key.
    #[error("{0}")]
    Parse(#[from] serde_yaml_ng::Error),
    /// A key exporter-toolkit accepts whose protection promreload does not provide.
    #[error("{key} is not supported by promreload's admin server ({instead})")]
    Unsupported {
        /// The key.
        key: &'static str,
        /// What to do instead.
        instead: &'static str,
    },
    /// A value exporter-toolkit refuses too.
    #[error("{key}: {reason}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// A basic-auth password that is not a bcrypt hash.
    #[error(transparent)]
    Hash(#[from] admin::HashError),
}

fn invalid(key: &'static str, reason: impl Into<String>) -> WebConfigError {
    WebConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// Reads a web config file.
pub fn load(path: &Path) -> Result<Web, WebConfigError> {
    let text = std::fs::read_to_string(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base)
}

/// Parses web config text, resolving relative paths against `base`.
pub fn parse(text: &str, base: &Path) -> Result<Web, WebConfigError> {
    if text.trim().is_empty() {
        return Ok(Web::default());
    }
    let config: RawConfig = serde_yaml_ng::from_str(text)?;
    if let Some(limit) = config.rate_limit
        && (limit.burst.unwrap_or(0) != 0 || limit.interval.is_some())
    {
        return Err(WebConfigError::Unsupported {
            key: "rate_limit",
            instead: "the admin server caps its connections by itself; remove the key",
        });
    }
    let users = config.basic_auth_users.unwrap_or_default();
    BasicAuth::check(&users)?;
    let http = config.http_server_config.unwrap_or_default();
    let _ = http.http2;
    let headers = checked_headers(http.headers.unwrap_or_default())?;
    let tls = match config.tls_server_config {
        Some(tls) => tls_policy(tls, base)?,
        None => None,
    };
    Ok(Web {
        tls,
        users,
        headers,
    })
}

fn checked_headers(
    headers: BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, WebConfigError> {
    let key = "http_server_config.headers";
    headers
        .into_iter()
        .map(|(name, value)| {
            let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| *n == name) else {
                return Err(invalid(
                    key,
                    format!("HTTP header {name:?} can not be configured"),
                ));
            };
            if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
                return Err(invalid(
                    key,
                    format!("invalid value for {name}: expected one of {allowed:?}"),
                ));
            }
            if HeaderValue::from_str(&value).is_err() {
                return Err(invalid(
                    key,
                    format!("the value of {name} is not a valid header value"),
                ));
            }
            Ok((name, value))
        })
        .collect()
}

/// The TLS policy; `None` when the section asks for nothing (exporter-toolkit then serves
/// plain HTTP too).
fn tls_policy(tls: RawTls, base: &Path) -> Result<Option<Tls>, WebConfigError> {
    for (key, set) in [
        ("tls_server_config.cert", tls.cert.is_some()),
        ("tls_server_config.key", tls.key.is_some()),
        ("tls_server_config.client_ca", tls.client_ca.is_some()),
    ] {
        if set {
            return Err(WebConfigError::Unsupported {
                key,
                instead: "give the PEM as a file: cert_file, key_file, client_ca_file",
            });
        }
    }
    if tls.client_allowed_sans.is_some() {
        return Err(WebConfigError::Unsupported {
            key: "tls_server_config.client_allowed_sans",
            instead: "restrict clients through client_ca_file",
        });
    }
    let _ = (
        tls.cipher_suites,
        tls.curve_preferences,
        tls.prefer_server_cipher_suites,
    );
    let auth_name = tls.client_auth_type.unwrap_or_default();
    let enabled = tls.cert_file.is_some()
        || tls.key_file.is_some()
        || tls.client_ca_file.is_some()
        || !auth_name.is_empty();
    if !enabled {
        return Ok(None);
    }
    let cert_file = tls
        .cert_file
        .ok_or_else(|| invalid("tls_server_config.cert_file", "missing (key_file needs it)"))?;
    let key_file = tls
        .key_file
        .ok_or_else(|| invalid("tls_server_config.key_file", "missing (cert_file needs it)"))?;
    let client_auth = ClientAuth::parse(&auth_name).ok_or_else(|| {
        invalid(
            "tls_server_config.client_auth_type",
            format!("invalid ClientAuth: {auth_name}"),
        )
    })?;
    if tls.client_ca_file.is_some() && client_auth == ClientAuth::NoClientCert {
        return Err(invalid(
            "tls_server_config.client_ca_file",
            "client CAs are configured without a client_auth_type",
        ));
    }
    let version = |key: &'static str, value: Option<String>, default| match value {
        None => Ok(default),
        Some(v) => {
            TlsVersion::parse(&v).ok_or_else(|| invalid(key, format!("unknown TLS version: {v}")))
        }
    };
    let mut policy = Tls::new(base.join(cert_file), base.join(key_file));
    policy.client_auth = client_auth;
    policy.client_ca_file = tls.client_ca_file.map(|p| base.join(p));
    policy.min_version = version(
        "tls_server_config.min_version",
        tls.min_version,
        TlsVersion::Tls12,
    )?;
    policy.max_version = version(
        "tls_server_config.max_version",
        tls.max_version,
        TlsVersion::Tls13,
    )?;
    if policy.versions().is_empty() {
        return Err(invalid(
            "tls_server_config.max_version",
            "no TLS version between min_version and max_version that promreload serves (TLS12, TLS13)",
        ));
    }
    Ok(Some(policy))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_of(text: &str) -> Tls {
        parse(text, Path::new("/etc/web")).unwrap().tls.unwrap()
    }

    fn refused(text: &str) -> String {
        parse(text, Path::new("/")).unwrap_err().to_string()
    }

    #[test]
    fn tls_with_relative_paths() {
        let tls = tls_of(
            "tls_server_config:\n  cert_file: tls.crt\n  key_file: /abs/tls.key\n  min_version: TLS13\n",
        );
        assert_eq!(tls.cert_file, PathBuf::from("/etc/web/tls.crt"));
        assert_eq!(tls.key_file, PathBuf::from("/abs/tls.key"));
        assert_eq!(tls.client_ca_file, None);
        assert_eq!(tls.versions(), vec![&rustls::version::TLS13]);
    }

    #[test]
    fn every_client_auth_type_of_exporter_toolkit() {
        for (name, auth) in [
            ("NoClientCert", ClientAuth::NoClientCert),
            ("RequestClientCert", ClientAuth::RequestClientCert),
            ("RequireAnyClientCert", ClientAuth::RequireAnyClientCert),
            (
                "VerifyClientCertIfGiven",
                ClientAuth::VerifyClientCertIfGiven,
            ),
            (
                "RequireAndVerifyClientCert",
                ClientAuth::RequireAndVerifyClientCert,
            ),
        ] {
            let ca = if auth == ClientAuth::NoClientCert {
                ""
            } else {
                "  client_ca_file: ca\n"
            };
            let tls = tls_of(&format!(
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: {name}\n{ca}"
            ));
            assert_eq!(tls.client_auth, auth, "{name}");
        }
        let tls = tls_of(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n",
        );
        assert_eq!(tls.client_ca_file, None, "the system's roots, as in Go");
    }

    #[test]
    fn users_and_headers_are_honoured() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let web = parse(
            &format!("basic_auth_users:\n  admin: {hash}\nhttp_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n"),
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(web.tls, None);
        assert_eq!(web.users.get("admin"), Some(&hash));
        assert_eq!(web.headers.len(), 2);
    }

    #[test]
    fn refuses_what_exporter_toolkit_refuses_naming_the_key() {
        for (text, key) in [
            ("tls_server_config:\n  cert_file: a\n", "key_file"),
            ("tls_server_confg: {}\n", "tls_server_confg"),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Sometimes\n",
                "client_auth_type",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: ca\n",
                "client_ca_file",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n",
                "min_version",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  max_version: TLS11\n",
                "max_version",
            ),
            (
                "basic_auth_users:\n  admin: not-a-hash\n",
                "basic_auth_users",
            ),
            (
                "http_server_config:\n  headers:\n    X-Powered-By: me\n",
                "X-Powered-By",
            ),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
                "X-Frame-Options",
            ),
        ] {
            let err = refused(text);
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_honour_naming_the_key() {
        for (text, key) in [
            (
                "tls_server_config:\n  cert: PEM\n  key_file: b\n",
                "tls_server_config.cert",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca\n  client_allowed_sans: [x]\n",
                "client_allowed_sans",
            ),
            ("rate_limit:\n  burst: 10\n  interval: 1s\n", "rate_limit"),
        ] {
            let err = refused(text);
            assert!(
                err.contains(key) && err.contains("not supported"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn protection_fails_closed() {
        let web = Web {
            users: BTreeMap::from([("admin".to_string(), "not-a-hash".to_string())]),
            ..Web::default()
        };
        assert!(matches!(web.protection(), Err(ProtectionError::Hash(_))));
        let web = Web::tls(Tls::new("/nonexistent/c".into(), "/nonexistent/k".into()));
        assert!(matches!(web.protection(), Err(ProtectionError::Tls(_))));
    }

    #[test]
    fn empty_or_tls_less_config_means_plain_http() {
        assert_eq!(parse("", Path::new("/")).unwrap(), Web::default());
        assert_eq!(
            parse("tls_server_config: {}\n", Path::new("/")).unwrap(),
            Web::default()
        );
        assert_eq!(
            parse("http_server_config:\n  http2: true\n", Path::new("/")).unwrap(),
            Web::default()
        );
    }
}
