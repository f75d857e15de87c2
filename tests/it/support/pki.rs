//! A throwaway PKI made with the openssl CLI: a CA, a server certificate for 127.0.0.1 and
//! localhost, and a client certificate.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files of one throwaway PKI.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (is the openssl package installed?)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate for 127.0.0.1 and localhost (`NAME.crt`, `NAME.key`, an EC P-256 key) that
/// the CA signs for `usage` (`serverAuth`, `clientAuth`).
fn leaf(dir: &Path, name: &str, usage: &str) {
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        format!("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\n"),
    )
    .expect("write ext");
    signed(
        dir,
        name,
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
        Some(&ext),
    );
}

/// A key (made with `newkey`) and a certificate for it that the CA signs (`NAME.key`,
/// `NAME.crt`), with the extensions in the file `ext`, or none: an X.509 v1 certificate.
fn signed(dir: &Path, name: &str, newkey: &[&str], ext: Option<&str>) {
    let (key, csr, crt) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
    );
    let subj = format!("/CN={name}");
    let mut request = vec!["req"];
    request.extend(newkey);
    request.extend(["-nodes", "-keyout", &key, "-out", &csr, "-subj", &subj]);
    openssl(dir, &request);
    let mut sign = vec![
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        &crt,
        "-days",
        "2",
    ];
    if let Some(ext) = ext {
        sign.extend(["-extfile", ext]);
    }
    openssl(dir, &sign);
}

impl Pki {
    /// Makes a CA and signs a server and a client certificate with it.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        self_signed_pair(
            d,
            ("ca.key", "ca.crt"),
            "/CN=promreload test CA",
            &[
                "basicConstraints=critical,CA:TRUE",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        leaf(d, "server", "serverAuth");
        leaf(d, "client", "clientAuth");
        Self {
            ca: d.join("ca.crt"),
            server_cert: d.join("server.crt"),
            server_key: d.join("server.key"),
            client_cert: d.join("client.crt"),
            client_key: d.join("client.key"),
            dir,
        }
    }

    /// A client certificate the CA signs the common way, `openssl x509 -req` without
    /// extensions: an X.509 v1 certificate (`NAME.crt`, `NAME.key`), which Go accepts.
    pub fn v1_client(&self, name: &str) -> (PathBuf, PathBuf) {
        let d = self.dir.path();
        signed(d, name, &["-newkey", "rsa:2048"], None);
        (d.join(format!("{name}.crt")), d.join(format!("{name}.key")))
    }

    /// A self-signed server certificate and key (`NAME.crt`, `NAME.key`) naming only `dns`:
    /// neither the loopback nor a CA anyone trusts.
    pub fn self_signed(&self, name: &str, dns: &str) -> (PathBuf, PathBuf) {
        let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
        self_signed_pair(
            self.dir.path(),
            (&key, &crt),
            &format!("/CN={dns}"),
            &[&format!("subjectAltName=DNS:{dns}")],
        );
        (self.dir.path().join(crt), self.dir.path().join(key))
    }

    /// A blocking client that does not verify the server (the test's own view of a server
    /// whose certificate no CA signed), presenting the client certificate if asked.
    pub fn unverifying_client(&self, with_identity: bool) -> reqwest::blocking::Client {
        let builder = blocking_builder().danger_accept_invalid_certs(true);
        self.with_client_identity(builder, with_identity)
    }

    /// A blocking client trusting the CA, presenting the client certificate if asked.
    pub fn client(&self, with_identity: bool) -> reqwest::blocking::Client {
        self.with_client_identity(self.trusting_the_ca(), with_identity)
    }

    /// A blocking client trusting the CA, presenting the certificate `cert` with `key`.
    pub fn client_presenting(&self, cert: &Path, key: &Path) -> reqwest::blocking::Client {
        let builder = self.trusting_the_ca().identity(identity(cert, key));
        builder.build().expect("client")
    }

    fn trusting_the_ca(&self) -> reqwest::blocking::ClientBuilder {
        let ca = std::fs::read(&self.ca).expect("read CA");
        blocking_builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"))
    }

    fn with_client_identity(
        &self,
        builder: reqwest::blocking::ClientBuilder,
        with_identity: bool,
    ) -> reqwest::blocking::Client {
        let builder = if with_identity {
            builder.identity(identity(&self.client_cert, &self.client_key))
        } else {
            builder
        };
        builder.build().expect("client")
    }
}

fn blocking_builder() -> reqwest::blocking::ClientBuilder {
    reqwest::blocking::Client::builder().timeout(std::time::Duration::from_secs(5))
}

/// A client identity from a PEM certificate and key.
fn identity(cert: &Path, key: &Path) -> reqwest::Identity {
    let mut pem = std::fs::read(cert).expect("client cert");
    pem.extend(std::fs::read(key).expect("client key"));
    reqwest::Identity::from_pem(&pem).expect("identity")
}

/// A self-signed certificate (`files`: key and certificate, in `dir`) with subject `subj`
/// and the extensions `addext`.
fn self_signed_pair(dir: &Path, files: (&str, &str), subj: &str, addext: &[&str]) {
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        files.0,
        "-out",
        files.1,
        "-days",
        "2",
        "-subj",
        subj,
    ];
    for ext in addext {
        args.extend(["-addext", ext]);
    }
    openssl(dir, &args);
}
