//! The admin HTTP server: `/healthz`, `/readyz`, `/metrics` and `/status`, for kubelet probes,
//! Prometheus scrapes and people. Whatever serves these implements [`Admin`]; the server
//! itself knows nothing about reloading.
//!
//! `:8080` means every interface (IPv6 and IPv4 where the host has IPv6): kubelet probes come
//! to the Pod IP, not to loopback.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the admin endpoints report.
pub trait Admin: Send + Sync + 'static {
    /// `/healthz`: the work loops are alive.
    fn healthy(&self) -> bool;
    /// `/readyz`: ready to serve its purpose.
    fn ready(&self) -> bool;
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

/// Serves the endpoints on `listener` until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, admin: Arc<dyn Admin>, shutdown: CancellationToken) {
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
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(route(&req, admin.as_ref())) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
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
        "/healthz" => probe(admin.healthy()),
        "/readyz" => probe(admin.ready()),
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
