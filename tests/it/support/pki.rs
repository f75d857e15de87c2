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

fn leaf(dir: &Path, name: &str, usage: &str) {
    let (key, csr, crt, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    std::fs::write(
        dir.join(&ext),
        format!("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\n"),
    )
    .expect("write ext");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
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
            "-extfile",
            &ext,
        ],
    );
}

impl Pki {
    /// Makes a CA and signs a server and a client certificate with it.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=promreload test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
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

    /// A self-signed server certificate and key (`NAME.crt`, `NAME.key`) naming only `dns`:
    /// neither the loopback nor a CA anyone trusts.
    pub fn self_signed(&self, name: &str, dns: &str) -> (PathBuf, PathBuf) {
        let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
        openssl(
            self.dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &crt,
                "-days",
                "2",
                "-subj",
                &format!("/CN={dns}"),
                "-addext",
                &format!("subjectAltName=DNS:{dns}"),
            ],
        );
        (self.dir.path().join(crt), self.dir.path().join(key))
    }

    /// A blocking client that does not verify the server (the test's own view of a server
    /// whose certificate no CA signed), presenting the client certificate if asked.
    pub fn unverifying_client(&self, with_identity: bool) -> reqwest::blocking::Client {
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .danger_accept_invalid_certs(true);
        if with_identity {
            let mut pem = std::fs::read(&self.client_cert).expect("client cert");
            pem.extend(std::fs::read(&self.client_key).expect("client key"));
            builder = builder.identity(reqwest::Identity::from_pem(&pem).expect("identity"));
        }
        builder.build().expect("client")
    }

    /// A blocking client trusting the CA, presenting the client certificate if asked.
    pub fn client(&self, with_identity: bool) -> reqwest::blocking::Client {
        let ca = std::fs::read(&self.ca).expect("read CA");
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"));
        if with_identity {
            let mut pem = std::fs::read(&self.client_cert).expect("client cert");
            pem.extend(std::fs::read(&self.client_key).expect("client key"));
            builder = builder.identity(reqwest::Identity::from_pem(&pem).expect("identity"));
        }
        builder.build().expect("client")
    }
}
