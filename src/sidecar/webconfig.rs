//! The admin server's `--web-config-file`: the subset of Prometheus's exporter-toolkit web
//! configuration that prometheus-operator hands the config reloader.
//!
//! Supported: `tls_server_config` with `cert_file`, `key_file`, `client_ca_file` and
//! `client_auth_type` `NoClientCert` or `RequireAndVerifyClientCert`. TLS version and cipher
//! tuning keys are accepted and left to rustls's secure defaults (TLS 1.2 and 1.3, modern
//! suites only); `http_server_config` is accepted and ignored. `basic_auth_users` is refused:
//! silently serving without the requested authentication would be worse than not starting.
//! Relative paths are relative to the web config file's directory, as in exporter-toolkit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::admin::Tls;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebConfig {
    #[serde(default)]
    tls_server_config: Option<TlsServerConfig>,
    #[serde(default)]
    http_server_config: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsServerConfig {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    // Tuning that rustls's defaults already cover.
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
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
    /// Authentication the admin server cannot do: refused rather than served without it.
    #[error("basic_auth_users is not supported by promreload's admin server")]
    BasicAuth,
    /// Only one of the two files.
    #[error("tls_server_config needs both cert_file and key_file")]
    CertAndKey,
    /// Client certificates required without a CA to check them.
    #[error("RequireAndVerifyClientCert needs client_ca_file")]
    ClientCa,
    /// A `client_auth_type` other than the two supported.
    #[error("client_auth_type {0} is not supported")]
    ClientAuthType(String),
}

/// Reads a web config file; `Ok(None)` when it asks for no TLS.
pub fn load(path: &Path) -> Result<Option<Tls>, WebConfigError> {
    let text = std::fs::read_to_string(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base)
}

/// Parses web config text, resolving relative paths against `base`.
pub fn parse(text: &str, base: &Path) -> Result<Option<Tls>, WebConfigError> {
    let config: WebConfig = if text.trim().is_empty() {
        return Ok(None);
    } else {
        serde_yaml_ng::from_str(text)?
    };
    if config.basic_auth_users.is_some_and(|u| !u.is_empty()) {
        return Err(WebConfigError::BasicAuth);
    }
    let _ = config.http_server_config;
    let Some(tls) = config.tls_server_config else {
        return Ok(None);
    };
    let _ = (
        tls.min_version,
        tls.max_version,
        tls.cipher_suites,
        tls.curve_preferences,
        tls.prefer_server_cipher_suites,
    );
    let (Some(cert), Some(key)) = (tls.cert_file, tls.key_file) else {
        return Err(WebConfigError::CertAndKey);
    };
    let client_ca_file = match tls.client_auth_type.as_deref().unwrap_or("NoClientCert") {
        "NoClientCert" => None,
        "RequireAndVerifyClientCert" => Some(tls.client_ca_file.ok_or(WebConfigError::ClientCa)?),
        other => return Err(WebConfigError::ClientAuthType(other.to_string())),
    };
    Ok(Some(Tls {
        cert_file: base.join(cert),
        key_file: base.join(key),
        client_ca_file: client_ca_file.map(|p| base.join(p)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_with_relative_paths() {
        let tls = parse(
            "tls_server_config:\n  cert_file: tls.crt\n  key_file: /abs/tls.key\n  min_version: TLS12\n",
            Path::new("/etc/web"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(tls.cert_file, PathBuf::from("/etc/web/tls.crt"));
        assert_eq!(tls.key_file, PathBuf::from("/abs/tls.key"));
        assert_eq!(tls.client_ca_file, None);
    }

    #[test]
    fn client_certificates_can_be_required() {
        let tls = parse(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca\n",
            Path::new("/w"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(tls.client_ca_file, Some(PathBuf::from("/w/ca")));
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        let base = Path::new("/");
        assert!(matches!(
            parse("basic_auth_users:\n  a: $2y$hash\n", base),
            Err(WebConfigError::BasicAuth)
        ));
        assert!(matches!(
            parse("tls_server_config:\n  cert_file: a\n", base),
            Err(WebConfigError::CertAndKey)
        ));
        assert!(matches!(
            parse("tls_server_confg: {}\n", base),
            Err(WebConfigError::Parse(_))
        ));
        let err = parse(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequestClientCert\n",
            base,
        )
        .unwrap_err();
        assert!(err.to_string().contains("RequestClientCert"), "{err}");
    }

    #[test]
    fn empty_or_tls_less_config_means_plain_http() {
        assert_eq!(parse("", Path::new("/")).unwrap(), None);
        assert_eq!(
            parse("http_server_config:\n  http2: true\n", Path::new("/")).unwrap(),
            None
        );
    }
}
