//! HTTPS for the admin server, with exporter-toolkit's meanings: the certificate and key, the
//! five client-certificate policies, and the TLS version bounds. The files are read again when
//! they change, so a rotated certificate needs no restart; a bad rotation keeps the last good
//! one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use super::key_pair;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
    SupportedProtocolVersion,
};
use tokio_rustls::TlsAcceptor;

/// exporter-toolkit's `client_auth_type`: whether a client certificate is asked for, required,
/// and verified.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate asked for.
    #[default]
    NoClientCert,
    /// Asked for, neither required nor verified.
    RequestClientCert,
    /// Required, not verified (the client still proves it holds the key).
    RequireAnyClientCert,
    /// Verified against the client CAs when given; a client without one is served.
    VerifyClientCertIfGiven,
    /// Required and verified against the client CAs.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    /// exporter-toolkit's spelling, or `None` if it has no such policy. `RequireClientCert` is
    /// its older name of `RequireAnyClientCert`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "" | "NoClientCert" => Self::NoClientCert,
            "RequestClientCert" => Self::RequestClientCert,
            "RequireAnyClientCert" | "RequireClientCert" => Self::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => Self::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => Self::RequireAndVerifyClientCert,
            _ => return None,
        })
    }

    /// Whether a presented certificate is checked against CAs.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            Self::VerifyClientCertIfGiven | Self::RequireAndVerifyClientCert
        )
    }
}

/// A TLS protocol version as exporter-toolkit names it (`TLS10` ... `TLS13`), ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0 (never served: below what rustls offers).
    Tls10,
    /// TLS 1.1 (never served).
    Tls11,
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl TlsVersion {
    /// `TLS10`, `TLS11`, `TLS12` or `TLS13`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "TLS10" => Self::Tls10,
            "TLS11" => Self::Tls11,
            "TLS12" => Self::Tls12,
            "TLS13" => Self::Tls13,
            _ => return None,
        })
    }
}

/// TLS for the admin server: the files (re-read when they change) and the policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// Certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Private key (PEM).
    pub key_file: PathBuf,
    /// Client certificate policy.
    pub client_auth: ClientAuth,
    /// CAs that verify client certificates (PEM); `None` with a verifying policy means the
    /// system's roots, as in Go.
    pub client_ca_file: Option<PathBuf>,
    /// Lowest version served (exporter-toolkit's default: TLS 1.2).
    pub min_version: TlsVersion,
    /// Highest version served (default: TLS 1.3).
    pub max_version: TlsVersion,
}

impl Tls {
    /// The certificate and key, no client certificates, TLS 1.2 and 1.3.
    pub fn new(cert_file: PathBuf, key_file: PathBuf) -> Self {
        Self {
            cert_file,
            key_file,
            client_auth: ClientAuth::NoClientCert,
            client_ca_file: None,
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
        }
    }

    /// The versions rustls serves within the bounds; empty when none is.
    pub fn versions(&self) -> Vec<&'static SupportedProtocolVersion> {
        [
            (TlsVersion::Tls12, &rustls::version::TLS12),
            (TlsVersion::Tls13, &rustls::version::TLS13),
        ]
        .into_iter()
        .filter(|(v, _)| (self.min_version..=self.max_version).contains(v))
        .map(|(_, version)| version)
        .collect()
    }
}

/// The admin server's certificate, key and client CAs, rebuilt when a file changes.
pub struct TlsFiles {
    tls: Tls,
    current: Mutex<(Vec<Vec<u8>>, TlsAcceptor)>,
}

impl TlsFiles {
    /// Reads and checks the files; an error names the file and the problem.
    pub fn load(tls: &Tls) -> Result<Self, TlsError> {
        let material = read_material(tls)?;
        let acceptor = build_acceptor(tls, &material)?;
        Ok(Self {
            tls: tls.clone(),
            current: Mutex::new((material, acceptor)),
        })
    }

    /// The acceptor for the files as they are now; on a bad rotation, the last good one.
    pub(super) fn acceptor(&self) -> TlsAcceptor {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        match read_material(&self.tls) {
            Ok(material) if material != current.0 => match build_acceptor(&self.tls, &material) {
                Ok(acceptor) => {
                    tracing::info!("admin server certificate reloaded");
                    *current = (material, acceptor);
                }
                Err(error) => tracing::warn!(%error, "admin server certificate not reloaded"),
            },
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "admin server certificate not reloaded"),
        }
        current.1.clone()
    }
}

/// A TLS file of the admin server that cannot be used: which, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", file.display())]
pub struct TlsError {
    /// The file.
    pub file: PathBuf,
    /// What is wrong with it (never its contents).
    pub reason: String,
}

fn named(file: &Path, reason: &dyn std::fmt::Display) -> TlsError {
    TlsError {
        file: file.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn read_material(tls: &Tls) -> Result<Vec<Vec<u8>>, TlsError> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| named(p, &e));
    let ca = match &tls.client_ca_file {
        Some(p) => read(p)?,
        None => Vec::new(),
    };
    Ok(vec![read(&tls.cert_file)?, read(&tls.key_file)?, ca])
}

fn build_acceptor(tls: &Tls, material: &[Vec<u8>]) -> Result<TlsAcceptor, TlsError> {
    let certs = CertificateDer::pem_slice_iter(&material[0])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| named(&tls.cert_file, &e))?;
    if certs.is_empty() {
        return Err(named(&tls.cert_file, &"no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_slice(&material[1]).map_err(|e| named(&tls.key_file, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions = tls.versions();
    if versions.is_empty() {
        return Err(named(
            &tls.cert_file,
            &"no TLS version between min_version and max_version that promreload serves (1.2, 1.3)",
        ));
    }
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| named(&tls.cert_file, &e))?;
    let builder = match tls.client_auth {
        ClientAuth::NoClientCert => builder.with_no_client_auth(),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => builder
            .with_client_cert_verifier(Arc::new(AnyClientCert {
                mandatory: tls.client_auth == ClientAuth::RequireAnyClientCert,
                algorithms: provider.signature_verification_algorithms,
            })),
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let roots = client_roots(tls, &material[2])?;
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = if tls.client_auth == ClientAuth::VerifyClientCertIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| named(tls.client_ca_file.as_deref().unwrap_or(&tls.cert_file), &e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let pair = key_pair::resolver(certs, key, &provider).map_err(|e| named(&tls.cert_file, &e))?;
    let mut config = builder.with_cert_resolver(pair);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The CAs that verify client certificates: the client CA file, or (as Go does when none is
/// given) the system's roots.
fn client_roots(tls: &Tls, pem: &[u8]) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match &tls.client_ca_file {
        Some(path) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| named(path, &e))?;
                roots.add(cert).map_err(|e| named(path, &e))?;
            }
            if roots.is_empty() {
                return Err(named(path, &"no CA certificate found"));
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if roots.is_empty() {
                return Err(named(
                    &tls.cert_file,
                    &"client certificates are to be verified, but there is no client_ca_file and no system CA certificate",
                ));
            }
        }
    }
    Ok(roots)
}

/// `RequestClientCert` and `RequireAnyClientCert`: any certificate is taken without checking
/// who issued it, as Go does; the handshake signature is still checked, so the client holds
/// the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exporter_toolkit_names_parse() {
        assert_eq!(
            ClientAuth::parse("RequireClientCert"),
            Some(ClientAuth::RequireAnyClientCert)
        );
        assert_eq!(ClientAuth::parse(""), Some(ClientAuth::NoClientCert));
        assert_eq!(ClientAuth::parse("requireandverifyclientcert"), None);
        assert!(ClientAuth::VerifyClientCertIfGiven.verifies());
        assert!(!ClientAuth::RequireAnyClientCert.verifies());
        assert_eq!(TlsVersion::parse("TLS13"), Some(TlsVersion::Tls13));
        assert_eq!(TlsVersion::parse("TLS1.3"), None);
    }

    #[test]
    fn version_bounds_pick_what_rustls_serves() {
        let mut tls = Tls::new("c".into(), "k".into());
        assert_eq!(tls.versions().len(), 2);
        tls.min_version = TlsVersion::Tls13;
        assert_eq!(tls.versions(), vec![&rustls::version::TLS13]);
        (tls.min_version, tls.max_version) = (TlsVersion::Tls10, TlsVersion::Tls12);
        assert_eq!(tls.versions(), vec![&rustls::version::TLS12]);
        tls.max_version = TlsVersion::Tls11;
        assert!(tls.versions().is_empty());
    }
}
