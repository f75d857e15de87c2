//! The admin HTTP server: `/healthz`, `/readyz`, `/metrics` and `/status`, for kubelet probes,
//! Prometheus scrapes and people. Whatever serves these implements [`Admin`]; the server
//! itself knows nothing about reloading.
//!
//! `:8080` means every interface (IPv6 and IPv4 where the host has IPv6): kubelet probes come
//! to the Pod IP, not to loopback. With [`TlsFiles`] the endpoints are served over HTTPS; the
//! certificate files are read again when they change, so a rotated certificate needs no
//! restart.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::ServerTls;

/// Liveness and readiness flags, set by the work loop, read by the probes.
#[derive(Debug)]
pub struct Probes {
    alive: AtomicBool,
    ready: AtomicBool,
}

impl Default for Probes {
    /// Alive, not ready.
    fn default() -> Self {
        Self {
            alive: AtomicBool::new(true),
            ready: AtomicBool::new(false),
        }
    }
}

impl Probes {
    /// `/healthz`: the work loop is alive.
    pub fn healthy(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// `/readyz`: ready to serve its purpose.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Marks the loop alive or dead.
    pub fn set_alive(&self, alive: bool) {
        self.alive.store(alive, Ordering::Relaxed);
    }

    /// Marks readiness.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
}

/// What the admin endpoints report.
pub trait Admin: Send + Sync + 'static {
    /// `/healthz` and `/readyz`.
    fn probes(&self) -> &Probes;
    /// `/metrics`: the OpenMetrics text.
    fn metrics(&self) -> String;
    /// `/status`: a JSON document.
    fn status(&self) -> String;
}

/// Binds the listen address; a bare `:port` means all interfaces.
pub async fn bind(address: &str) -> io::Result<TcpListener> {
    if let Some(port) = address.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad port in {address:?}"),
            )
        })?;
        return match TcpListener::bind(("::", port)).await {
            Ok(l) => Ok(l),
            Err(_) => TcpListener::bind(("0.0.0.0", port)).await,
        };
    }
    TcpListener::bind(address).await
}

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the endpoints on `listener` (over TLS with `tls`) until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsFiles>,
    admin: Arc<dyn Admin>,
    shutdown: CancellationToken,
) {
    let tls = tls.map(Arc::new);
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    tracing::warn!(%error, "admin server accept failed");
                    continue;
                }
            },
        };
        let admin = admin.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, admin, shutdown).await,
                Some(tls) => {
                    let handshake = tls.acceptor().accept(stream);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => serve_connection(stream, admin, shutdown).await,
                        Ok(Err(error)) => tracing::debug!(%error, "admin TLS handshake failed"),
                        Err(_) => tracing::debug!("admin TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

async fn serve_connection<I>(io: I, admin: Arc<dyn Admin>, shutdown: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let admin = admin.clone();
        async move { Ok::<_, Infallible>(route(&req, admin.as_ref())) }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service);
    tokio::select! {
        _ = conn => {}
        _ = shutdown.cancelled() => {}
    }
}

/// The admin server's certificate, key and optional client CA, rebuilt when a file changes.
pub struct TlsFiles {
    tls: ServerTls,
    current: Mutex<(Vec<Vec<u8>>, TlsAcceptor)>,
}

impl TlsFiles {
    /// Reads and checks the files; an error names the file and the problem.
    pub fn load(tls: &ServerTls) -> Result<Self, String> {
        let material = read_material(tls)?;
        let acceptor = build_acceptor(tls, &material)?;
        Ok(Self {
            tls: tls.clone(),
            current: Mutex::new((material, acceptor)),
        })
    }

    /// The acceptor for the files as they are now; on a bad rotation, the last good one.
    fn acceptor(&self) -> TlsAcceptor {
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

fn read_material(tls: &ServerTls) -> Result<Vec<Vec<u8>>, String> {
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let ca = match &tls.client_ca_file {
        Some(p) => read(p)?,
        None => Vec::new(),
    };
    Ok(vec![read(&tls.cert_file)?, read(&tls.key_file)?, ca])
}

fn build_acceptor(tls: &ServerTls, material: &[Vec<u8>]) -> Result<TlsAcceptor, String> {
    let named = |p: &std::path::Path, e: &dyn std::fmt::Display| format!("{}: {e}", p.display());
    let certs = CertificateDer::pem_slice_iter(&material[0])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| named(&tls.cert_file, &e))?;
    if certs.is_empty() {
        return Err(named(&tls.cert_file, &"no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_slice(&material[1]).map_err(|e| named(&tls.key_file, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &tls.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&material[2]) {
                let cert = cert.map_err(|e| named(path, &e))?;
                roots.add(cert).map_err(|e| named(path, &e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| named(path, &e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| named(&tls.cert_file, &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The address a listener got (for logs and tests using port 0).
pub fn local_addr(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}

fn route(req: &Request<Incoming>, admin: &dyn Admin) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match req.uri().path() {
        "/healthz" => probe(admin.probes().healthy()),
        "/readyz" => probe(admin.probes().ready()),
        "/metrics" => with_type(
            StatusCode::OK,
            admin.metrics(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        "/status" => with_type(StatusCode::OK, admin.status(), "application/json"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn probe(ok: bool) -> Response<Full<Bytes>> {
    if ok {
        text(StatusCode::OK, "ok\n")
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    with_type(status, body.to_string(), "text/plain; charset=utf-8")
}

fn with_type(status: StatusCode, body: String, content_type: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}
