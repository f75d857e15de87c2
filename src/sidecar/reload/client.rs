//! The HTTP client that talks to Prometheus (reload and runtimeinfo): certificate
//! verification against the system roots plus an optional CA bundle, or (on the loopback)
//! against the very certificate the server is configured to serve; an optional client
//! certificate, and basic or bearer auth.
//!
//! Every file is read again at each request, so rotated certificates and credentials take
//! effect without a restart; the client is rebuilt only when the TLS material changed. The
//! contents are never logged: errors name the file, not what is in it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder, Url, redirect};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::admin::key_pair;
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::ReloadError;
use crate::sidecar::settings::{Auth, ClientTls};

/// A client for Prometheus's HTTP API with the configured TLS and credentials.
#[derive(Debug)]
pub struct PromClient {
    tls: ClientTls,
    auth: Option<Auth>,
    /// The TLS material the cached client was built from, and that client.
    cached: Option<(Vec<Vec<u8>>, Client)>,
}

impl PromClient {
    /// A client with these settings; nothing is read until the first request.
    pub fn new(tls: ClientTls, auth: Option<Auth>) -> Self {
        Self {
            tls,
            auth,
            cached: None,
        }
    }

    /// A request with credentials attached and the given timeout.
    pub fn request(
        &mut self,
        method: Method,
        url: &Url,
        timeout: Duration,
    ) -> Result<RequestBuilder, ReloadError> {
        let request = self.client()?.request(method, url.clone()).timeout(timeout);
        Ok(match &self.auth {
            None => request,
            Some(Auth::Basic {
                username,
                password_file,
            }) => request.basic_auth(username, Some(read_secret(password_file)?)),
            Some(Auth::Bearer { token_file }) => request.bearer_auth(read_secret(token_file)?),
        })
    }

    /// Checks that every configured file can be read and used (at start-up).
    pub fn check(&mut self) -> Result<(), ReloadError> {
        self.client()?;
        match &self.auth {
            None => Ok(()),
            Some(Auth::Basic { password_file, .. }) => read_secret(password_file).map(drop),
            Some(Auth::Bearer { token_file }) => read_secret(token_file).map(drop),
        }
    }

    fn client(&mut self) -> Result<Client, ReloadError> {
        let material = self.material()?;
        if let Some((built_from, client)) = &self.cached
            && *built_from == material
        {
            return Ok(client.clone());
        }
        let client = self.build(&material)?;
        self.cached = Some((material, client.clone()));
        Ok(client)
    }

    /// The bytes of the CA, certificate, key and pinned certificate files, in that order
    /// (absent ones empty).
    fn material(&self) -> Result<Vec<Vec<u8>>, ReloadError> {
        let read = |p: Option<&Path>| p.map_or(Ok(Vec::new()), read_file);
        let (cert, key) = match &self.tls.cert_and_key {
            Some((c, k)) => (Some(c.as_path()), Some(k.as_path())),
            None => (None, None),
        };
        Ok(vec![
            read(self.tls.ca_file.as_deref())?,
            read(cert)?,
            read(key)?,
            read(self.tls.pinned_cert_file.as_deref())?,
        ])
    }

    fn build(&self, material: &[Vec<u8>]) -> Result<Client, ReloadError> {
        let config = self.tls_config(material)?;
        Self::base()
            .use_preconfigured_tls(config)
            .build()
            .map_err(|e| ReloadError::Credentials {
                reason: format!("building the TLS client: {e}"),
            })
    }

    /// The common settings of both kinds of client.
    fn base() -> reqwest::ClientBuilder {
        // `localhost` is the loopback (RFC 6761), whatever the image has: a static binary on
        // an image without /etc/hosts or NSS (prometheus-operator's --reload-url names
        // localhost) still reaches Prometheus. The URL's port is kept.
        let loopback = [
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
        ];
        Client::builder()
            .resolve_to_addrs("localhost", &loopback)
            .redirect(redirect::Policy::none())
            .user_agent(concat!("promreload/", env!("CARGO_PKG_VERSION")))
            // Reloads are rare: each opens its own connection (and handshake).
            .pool_max_idle_per_host(0)
    }

    /// The TLS settings: the server verified against the system roots plus the CA bundle
    /// (or trusted as the pinned certificate, or not verified with `insecure_skip_verify`),
    /// and the client certificate taken as Go takes it (an X.509 v1 one included, see
    /// [`key_pair`]).
    fn tls_config(&self, material: &[Vec<u8>]) -> Result<rustls::ClientConfig, ReloadError> {
        let pinned = match &self.tls.pinned_cert_file {
            None => None,
            Some(pinned_file) => {
                let pinned = CertificateDer::pem_slice_iter(&material[3])
                    .next()
                    .ok_or_else(|| {
                        credentials(pinned_file, "no certificate in the web config's cert_file")
                    })?
                    .map_err(|e| {
                        credentials(pinned_file, &format!("not a PEM certificate: {e}"))
                    })?;
                Some((pinned.into_owned(), pinned_file.to_path_buf()))
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(path) = &self.tls.ca_file {
            let before = roots.len();
            for cert in CertificateDer::pem_slice_iter(&material[0]) {
                let cert =
                    cert.map_err(|e| credentials(path, &format!("not a PEM CA bundle: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| credentials(path, &format!("not a CA certificate: {e}")))?;
            }
            if roots.len() == before {
                return Err(credentials(path, "no certificate in the CA bundle"));
            }
        }
        let webpki = if roots.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| ReloadError::Credentials {
                        reason: format!("building the TLS client: {e}"),
                    })?,
            )
        };
        let verifier = Arc::new(ServerVerifier {
            pinned,
            insecure: self.tls.insecure_skip_verify,
            webpki,
            algorithms: provider.signature_verification_algorithms,
        });
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ReloadError::Credentials {
                reason: format!("building the TLS client: {e}"),
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &self.tls.cert_and_key {
            None => builder.with_no_client_auth(),
            Some((cert_path, key_path)) => {
                let chain = CertificateDer::pem_slice_iter(&material[1])
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        credentials(cert_path, &format!("client certificate unusable: {e}"))
                    })?;
                let key = PrivateKeyDer::from_pem_slice(&material[2])
                    .map_err(|e| credentials(key_path, &format!("client key unusable: {e}")))?;
                let pair = key_pair::resolver(chain, key, &provider).map_err(|e| {
                    credentials(
                        cert_path,
                        &format!("client certificate or key unusable: {e}"),
                    )
                })?;
                builder.with_client_cert_resolver(pair)
            }
        };
        // No session resumption: every reload's handshake shows the certificate the server
        // presents now, so a server that stops presenting the trusted one is noticed at once.
        config.resumption = rustls::client::Resumption::disabled();
        Ok(config)
    }
}

/// Trusts a server that presents exactly the pinned certificate (whatever name it carries),
/// or one the CAs vouch for under the URL's name, or, with `insecure_skip_verify`, any. The
/// handshake signature is checked every way, so the server holds the certificate's key.
#[derive(Debug)]
struct ServerVerifier {
    /// The certificate the web config serves, and its file.
    pinned: Option<(CertificateDer<'static>, std::path::PathBuf)>,
    insecure: bool,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let pinned = self.pinned.as_ref();
        if self.insecure || pinned.is_some_and(|(cert, _)| end_entity.as_ref() == cert.as_ref()) {
            return Ok(ServerCertVerified::assertion());
        }
        let by_ca = match &self.webpki {
            Some(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Err(rustls::Error::General(
                "no CA certificate to check it with".into(),
            )),
        };
        match pinned {
            None => by_ca,
            Some((_, file)) => by_ca.map_err(|reason| {
                rustls::Error::General(format!(
                    "the server's certificate is not the one in {} (the web config's cert_file), and no trusted CA vouches for it: {reason}",
                    file.display()
                ))
            }),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, ReloadError> {
    std::fs::read(path).map_err(|e| credentials(path, &e.to_string()))
}

/// A password or token: the file's content without its trailing newline.
fn read_secret(path: &Path) -> Result<String, ReloadError> {
    let bytes = read_file(path)?;
    let text = String::from_utf8(bytes).map_err(|_| credentials(path, "not UTF-8"))?;
    let secret = text.trim_end_matches(['\n', '\r']).to_string();
    if secret.is_empty() {
        return Err(credentials(path, "empty"));
    }
    Ok(secret)
}

fn credentials(path: &Path, reason: &str) -> ReloadError {
    ReloadError::Credentials {
        reason: format!("{}: {reason}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn secrets_lose_their_trailing_newline_and_empty_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").unwrap();
        assert_eq!(read_secret(&p).unwrap(), "s3cret");
        std::fs::write(&p, "\n").unwrap();
        let err = read_secret(&p).unwrap_err().to_string();
        assert!(err.contains("empty") && !err.contains("s3cret"), "{err}");
    }

    #[test]
    fn unreadable_files_are_named_not_shown() {
        let mut client = PromClient::new(
            ClientTls {
                ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
                ..ClientTls::default()
            },
            None,
        );
        let err = client.check().unwrap_err();
        assert_eq!(err.metric_label(), "credentials");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn a_bad_ca_bundle_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not a certificate").unwrap();
        let mut client = PromClient::new(
            ClientTls {
                ca_file: Some(p),
                ..ClientTls::default()
            },
            None,
        );
        assert_eq!(client.check().unwrap_err().metric_label(), "credentials");
    }
}
