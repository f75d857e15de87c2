//! A certificate chain and its private key, taken as Go's `crypto/tls.X509KeyPair` takes
//! them: the end-entity certificate is not parsed beyond its public key, so an X.509 v1
//! certificate (what `openssl x509 -req` without extensions makes) is accepted, as Go accepts
//! it; the key must belong to it. rustls's own loader parses the certificate with webpki,
//! which refuses v1 ("UnsupportedCertVersion").
//!
//! The key is loaded by the crypto provider (ring): PKCS#1, PKCS#8 and SEC1; RSA keys of
//! 2048 bits or more, ECDSA P-256 and P-384, Ed25519. Go also takes RSA keys under 2048 bits
//! and P-521; those are refused here with the provider's reason.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};

/// Why a key cannot go with a certificate.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The crypto provider cannot load the key.
    #[error("the key is unusable: {0}")]
    Unusable(rustls::Error),
    /// The key is not the certificate's.
    #[error("the certificate and key do not form a pair")]
    NotAPair,
}

/// Loads `key` and checks that it belongs to the certificate whose `SubjectPublicKeyInfo`
/// (DER, whole) is `spki`, as Go's `tls.X509KeyPair` checks it. The one check of a pair, for
/// the sidecar's own certificates and the reconciler's TLS material alike.
pub fn signing_key(
    spki: &[u8],
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<Arc<dyn SigningKey>, KeyError> {
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(KeyError::Unusable)?;
    // A provider that cannot tell its public key is trusted, as rustls trusts it.
    match signing.public_key() {
        Some(public) if public.as_ref() != spki => Err(KeyError::NotAPair),
        _ => Ok(signing),
    }
}

/// The chain and key as a certificate resolver for a server or a client.
pub fn resolver(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<Arc<SingleCertAndKey>, String> {
    let Some(leaf) = chain.first() else {
        return Err("no certificate found".into());
    };
    let spki = subject_public_key_info(leaf)
        .map_err(|e| format!("the certificate is not X.509 DER: {e}"))?;
    let signing = signing_key(spki, key, provider).map_err(|e| e.to_string())?;
    Ok(Arc::new(SingleCertAndKey::from(CertifiedKey::new(
        chain, signing,
    ))))
}

/// The `SubjectPublicKeyInfo` of a DER certificate (whole, with its tag and length): the
/// seventh field of `TBSCertificate`, or the sixth when the version is absent (v1).
fn subject_public_key_info(cert: &[u8]) -> Result<&[u8], &'static str> {
    let certificate = expect(cert, SEQUENCE)?.0;
    let mut tbs = expect(certificate, SEQUENCE)?.0;
    if tbs.first() == Some(&VERSION) {
        tbs = element(tbs)?.2;
    }
    // serialNumber, signature, issuer, validity, subject.
    for tag in [INTEGER, SEQUENCE, SEQUENCE, SEQUENCE, SEQUENCE] {
        tbs = expect(tbs, tag)?.2;
    }
    let (_, whole, _) = expect(tbs, SEQUENCE)?;
    Ok(whole)
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
/// `[0] EXPLICIT`, the version's tag.
const VERSION: u8 = 0xa0;

/// A DER element split off its input: (contents, the whole element, what follows it).
type Split<'a> = Result<(&'a [u8], &'a [u8], &'a [u8]), &'static str>;

/// The first element of `input`, which must have `tag`.
fn expect(input: &[u8], tag: u8) -> Split<'_> {
    if input.first() != Some(&tag) {
        return Err("unexpected element");
    }
    element(input)
}

/// The first DER element of `input`.
fn element(input: &[u8]) -> Split<'_> {
    let truncated = "truncated";
    let first = *input.get(1).ok_or(truncated)?;
    let (length, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return Err("unsupported length");
        }
        let bytes = input.get(2..2 + count).ok_or(truncated)?;
        let length = bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
        (length, 2 + count)
    };
    let end = header.checked_add(length).ok_or(truncated)?;
    if end > input.len() {
        return Err(truncated);
    }
    Ok((&input[header..end], &input[..end], &input[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    fn pem(path: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/src/reconciler/testdata/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn pair(cert: &str, key: &str) -> Result<Arc<SingleCertAndKey>, String> {
        let chain = CertificateDer::pem_slice_iter(&pem(cert))
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(&pem(key)).unwrap();
        resolver(chain, key, &rustls::crypto::ring::default_provider())
    }

    #[test]
    fn pairs_are_taken_as_go_takes_them() {
        // v3 (PKCS#8), and v1 certificates with PKCS#1, PKCS#8 and SEC1 keys.
        for (cert, key) in [
            ("cert.pem", "key.pem"),
            ("v1-rsa.crt", "v1-rsa-pkcs1.key"),
            ("v1-rsa.crt", "v1-rsa-pkcs8.key"),
            ("v1-ec.crt", "v1-ec-sec1.key"),
        ] {
            assert!(
                pair(cert, key).is_ok(),
                "{cert} {key}: {:?}",
                pair(cert, key).err()
            );
        }
        // A key of another certificate, and another kind of key.
        for (cert, key) in [
            ("cert.pem", "other-key.pem"),
            ("v1-rsa.crt", "v1-ec-sec1.key"),
        ] {
            assert_eq!(
                pair(cert, key).err().as_deref(),
                Some("the certificate and key do not form a pair"),
                "{cert} {key}"
            );
        }
    }

    #[test]
    fn broken_der_is_refused_not_read_past() {
        let cert = CertificateDer::pem_slice_iter(&pem("cert.pem"))
            .next()
            .unwrap()
            .unwrap();
        let der = cert.as_ref();
        for cut in [0, 1, 2, 10, der.len() / 2, der.len() - 1] {
            assert!(
                subject_public_key_info(&der[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        assert!(subject_public_key_info(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(subject_public_key_info(der).is_ok());
    }
}
