//! The admin HTTP server: `/healthz`, `/readyz`, `/metrics` and `/status`, for kubelet probes,
//! Prometheus scrapes and people. Whatever serves these implements [`Admin`]; the server
//! itself knows nothing about reloading.
//!
//! `:8080` means every interface (IPv6 and IPv4 where the host has IPv6): kubelet probes come
//! to the Pod IP, not to loopback. [`Protection`] adds what an exporter-toolkit web config
//! asks for: HTTPS through [`TlsFiles`] (the certificate files are read again when they
//! change, so a rotated certificate needs no restart; every `client_auth_type`), basic auth
//! through [`BasicAuth`], and extra response headers.
//!
//! The server is reachable from the whole Pod network, so it defends itself: at most
//! [`connection_limit`] connections at once (beyond that, the least recently active one is
//! closed to make room, so a flood of idle connections cannot lock out the kubelet's probes);
//! request headers must arrive within [`HEADER_TIMEOUT`] and a connection idle for
//! [`IDLE_TIMEOUT`] is closed; accept errors (out of file descriptors) back off instead of
//! spinning and are logged at most once per [`ACCEPT_LOG_INTERVAL`]. The connection cap leaves
//! [`RESERVED_FDS`] descriptors of the process's limit to the work loop.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use auth::{BasicAuth, HashError};
pub use tls::{ClientAuth, Tls, TlsError, TlsFiles, TlsVersion};

mod auth;
pub mod key_pair;
mod tls;

/// How the endpoints are protected, as loaded at start: HTTPS, basic auth, and the extra
/// response headers of exporter-toolkit's `http_server_config`.
#[derive(Default)]
pub struct Protection {
    /// Serve over HTTPS with these files.
    pub tls: Option<TlsFiles>,
    /// Ask every request for one of these users.
    pub basic_auth: Option<Arc<BasicAuth>>,
    /// Set on every response.
    pub headers: Vec<(header::HeaderName, header::HeaderValue)>,
}

/// Liveness and readiness flags, set by the work loop, read by the probes.
#[derive(Debug)]
pub struct Probes {
    alive: AtomicBool,
    ready: AtomicBool,
    /// Since when the work loop has been busy with one piece of work, if it is.
    busy_since: Mutex<Option<Instant>>,
    /// Busy for longer than this means stuck.
    liveness_timeout: Duration,
}

impl Default for Probes {
    /// Alive, not ready, never considered stuck.
    fn default() -> Self {
        Self::new(Duration::MAX)
    }
}

impl Probes {
    /// Alive, not ready; stuck when busy for longer than `liveness_timeout`.
    pub fn new(liveness_timeout: Duration) -> Self {
        Self {
            alive: AtomicBool::new(true),
            ready: AtomicBool::new(false),
            busy_since: Mutex::new(None),
            liveness_timeout,
        }
    }

    /// `/healthz`: the work loop is alive and not stuck in one piece of work.
    pub fn healthy(&self) -> bool {
        self.alive.load(Ordering::Relaxed) && !self.stuck()
    }

    /// The work loop has been busy with one piece of work for longer than the timeout.
    pub fn stuck(&self) -> bool {
        let since = *self.busy_since.lock().unwrap_or_else(|e| e.into_inner());
        since.is_some_and(|t| t.elapsed() > self.liveness_timeout)
    }

    /// Marks the start (`true`) or the end of a piece of work.
    pub fn set_busy(&self, busy: bool) {
        let mut since = self.busy_since.lock().unwrap_or_else(|e| e.into_inner());
        *since = busy.then(Instant::now);
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
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection with no request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// The most connections served at once (lowered by a small file-descriptor limit).
pub const MAX_CONNECTIONS: usize = 128;
/// File descriptors left to the rest of the process (config files, watches, reloads).
pub const RESERVED_FDS: u64 = 64;
/// Accept errors are logged at most once per this interval (with a count of the rest).
pub const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How many connections the server holds at once: [`MAX_CONNECTIONS`], or fewer when the
/// file-descriptor limit minus [`RESERVED_FDS`] is smaller (at least 4).
pub fn connection_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and has no other effect.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    };
    let room = soft.saturating_sub(RESERVED_FDS);
    (room.min(MAX_CONNECTIONS as u64) as usize).max(4)
}

/// Serves the endpoints on `listener`, protected as `protection` says, until `shutdown` is
/// cancelled.
pub async fn serve(
    listener: TcpListener,
    protection: Protection,
    admin: Arc<dyn Admin>,
    shutdown: CancellationToken,
) {
    let protection = Arc::new(protection);
    let conns = Arc::new(Mutex::new(Connections::new(connection_limit())));
    let mut errors = AcceptErrors::default();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                errors.recovered();
                stream
            }
            Err(error) => {
                // Out of descriptors: free one, and wait instead of spinning.
                if matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                    lock(&conns).evict();
                }
                let wait = errors.failed(&error);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
        };
        let (id, conn, evicted) = lock(&conns).admit();
        if evicted {
            // Let the evicted connection's task run and close its socket before the next
            // accept, so descriptors stay bounded by the cap even in a burst.
            tokio::task::yield_now().await;
        }
        let (admin, protection, conns) = (admin.clone(), protection.clone(), conns.clone());
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = serve_stream(stream, protection, admin, conn.clone()) => {}
                _ = conn.closed.cancelled() => {}
                _ = shutdown.cancelled() => {}
            }
            lock(&conns).remove(id);
        });
    }
}

fn lock(conns: &Mutex<Connections>) -> std::sync::MutexGuard<'_, Connections> {
    conns.lock().unwrap_or_else(|e| e.into_inner())
}

async fn serve_stream(
    stream: tokio::net::TcpStream,
    protection: Arc<Protection>,
    admin: Arc<dyn Admin>,
    conn: Arc<Conn>,
) {
    match &protection.tls {
        None => serve_connection(stream, protection, admin, conn).await,
        Some(tls) => {
            let handshake = tls.acceptor().accept(stream);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                Ok(Ok(stream)) => serve_connection(stream, protection, admin, conn).await,
                Ok(Err(error)) => tracing::debug!(%error, "admin TLS handshake failed"),
                Err(_) => tracing::debug!("admin TLS handshake timed out"),
            }
        }
    }
}

async fn serve_connection<I>(
    io: I,
    protection: Arc<Protection>,
    admin: Arc<dyn Admin>,
    conn: Arc<Conn>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = conn.clone();
    let service = hyper::service::service_fn(move |req| {
        activity.touch();
        let (protection, admin) = (protection.clone(), admin.clone());
        async move {
            let allowed = match &protection.basic_auth {
                None => true,
                Some(auth) => auth.allows(req.headers()).await,
            };
            let mut response = if allowed {
                route(&req, admin.as_ref())
            } else {
                let mut denied = text(StatusCode::UNAUTHORIZED, "unauthorized\n");
                denied.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Basic"),
                );
                denied
            };
            for (name, value) in &protection.headers {
                response.headers_mut().insert(name.clone(), value.clone());
            }
            Ok::<_, Infallible>(response)
        }
    });
    let serving = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(serving);
    loop {
        let idle_until = conn.idle_deadline();
        tokio::select! {
            _ = serving.as_mut() => return,
            _ = tokio::time::sleep_until(idle_until.into()) => {
                if conn.idle_deadline() <= Instant::now() {
                    return;
                }
            }
        }
    }
}

/// One connection as the accept loop sees it.
#[derive(Debug)]
struct Conn {
    /// Cancelled to close it (evicted to make room).
    closed: CancellationToken,
    /// Milliseconds after `epoch` of the accept or of the last request.
    active_ms: AtomicU64,
    epoch: Instant,
}

impl Conn {
    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.active_ms.store(ms, Ordering::Relaxed);
    }

    fn last_active(&self) -> Instant {
        self.epoch + Duration::from_millis(self.active_ms.load(Ordering::Relaxed))
    }

    fn idle_deadline(&self) -> Instant {
        self.last_active() + IDLE_TIMEOUT
    }
}

/// The open connections, capped: admitting one over the cap closes the least recently active.
#[derive(Debug)]
struct Connections {
    limit: usize,
    next: u64,
    open: BTreeMap<u64, Arc<Conn>>,
    epoch: Instant,
}

impl Connections {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            next: 0,
            open: BTreeMap::new(),
            epoch: Instant::now(),
        }
    }

    /// Registers a new connection; returns its id, its handle, and whether another one was
    /// closed to make room.
    fn admit(&mut self) -> (u64, Arc<Conn>, bool) {
        let evicted = self.open.len() >= self.limit;
        while self.open.len() >= self.limit {
            self.evict();
        }
        let conn = Arc::new(Conn {
            closed: CancellationToken::new(),
            active_ms: AtomicU64::new(0),
            epoch: self.epoch,
        });
        conn.touch();
        self.next += 1;
        self.open.insert(self.next, conn.clone());
        (self.next, conn, evicted)
    }

    /// Closes the least recently active connection, if any.
    fn evict(&mut self) {
        let oldest = self
            .open
            .iter()
            .min_by_key(|(_, c)| c.active_ms.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        if let Some(conn) = oldest.and_then(|id| self.open.remove(&id)) {
            conn.closed.cancel();
        }
    }

    fn remove(&mut self, id: u64) {
        self.open.remove(&id);
    }
}

/// Backoff and rate-limited logging for accept errors.
#[derive(Debug, Default)]
struct AcceptErrors {
    streak: u32,
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    /// Records a failure; returns how long to wait before accepting again (10 ms doubling to
    /// 1 s).
    fn failed(&mut self, error: &io::Error) -> Duration {
        self.streak = self.streak.saturating_add(1);
        let due = self
            .last_logged
            .is_none_or(|t| t.elapsed() >= ACCEPT_LOG_INTERVAL);
        if due {
            tracing::warn!(%error, suppressed = self.unlogged, "admin server cannot accept connections; backing off");
            self.last_logged = Some(Instant::now());
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        Duration::from_millis(10 << self.streak.min(7).saturating_sub(1))
            .min(Duration::from_secs(1))
    }

    fn recovered(&mut self) {
        self.streak = 0;
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
        "/healthz" => probe(admin.probes().healthy()),
        "/readyz" => probe(admin.probes().ready()),
        "/metrics" if wants_openmetrics(req) => with_type(
            StatusCode::OK,
            admin.metrics(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        "/metrics" => with_type(
            StatusCode::OK,
            classic_text(&admin.metrics()),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        "/status" => with_type(StatusCode::OK, admin.status(), "application/json"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Whether the client asked for OpenMetrics (Prometheus does); everyone else (curl,
/// `promtool check metrics`, older scrapers) gets the classic text format.
fn wants_openmetrics(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            let mut parts = media.split(';').map(str::trim);
            let accepted = parts.next() == Some("application/openmetrics-text");
            let refused = parts.any(|p| p.replace(' ', "") == "q=0");
            accepted && !refused
        })
}

/// The classic Prometheus text format (0.0.4) of an OpenMetrics exposition: no `# EOF` or
/// `# UNIT`; a counter family is named like its `_total` sample; an `info` family becomes a
/// gauge named like its `_info` sample; `unknown` becomes `untyped`.
pub fn classic_text(openmetrics: &str) -> String {
    let lines: Vec<&str> = openmetrics.lines().collect();
    let mut out = String::with_capacity(openmetrics.len());
    for (i, line) in lines.iter().enumerate() {
        if *line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let Some((keyword, name, rest)) = metadata(line) else {
            if !line.ends_with("_created") && !line.contains("_created{") {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        };
        // A family's type is on its own `# TYPE` line, which may follow its `# HELP` line.
        let kind = lines[i..]
            .iter()
            .filter_map(|l| metadata(l))
            .find(|(k, n, _)| *k == "TYPE" && *n == name)
            .map_or("unknown", |(_, _, t)| t);
        let (name, kind) = match kind {
            "counter" => (format!("{name}_total"), "counter"),
            "info" => (format!("{name}_info"), "gauge"),
            "unknown" => (name.to_string(), "untyped"),
            other => (name.to_string(), other),
        };
        let rest = if keyword == "TYPE" { kind } else { rest };
        out.push_str(&format!("# {keyword} {name} {rest}\n"));
    }
    out
}

/// `# HELP name text` or `# TYPE name type`, split.
fn metadata(line: &str) -> Option<(&str, &str, &str)> {
    let rest = line.strip_prefix("# ")?;
    let (keyword, rest) = rest.split_once(' ')?;
    if keyword != "HELP" && keyword != "TYPE" {
        return None;
    }
    let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
    Some((keyword, name, text))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_renames_counters_and_info() {
        let om = "# HELP x_reloads Reload attempts.\n# TYPE x_reloads counter\nx_reloads_total 3\n\
                  # HELP x_build Build information.\n# TYPE x_build info\nx_build_info{version=\"1\"} 1\n\
                  # HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n# EOF\n";
        assert_eq!(
            classic_text(om),
            "# HELP x_reloads_total Reload attempts.\n# TYPE x_reloads_total counter\nx_reloads_total 3\n\
             # HELP x_build_info Build information.\n# TYPE x_build_info gauge\nx_build_info{version=\"1\"} 1\n\
             # HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n"
        );
    }

    #[test]
    fn the_least_recently_active_connection_makes_room() {
        let mut conns = Connections::new(2);
        let (_, a, _) = conns.admit();
        let (_, b, _) = conns.admit();
        std::thread::sleep(Duration::from_millis(5));
        a.touch();
        let (_, c, evicted) = conns.admit();
        assert!(evicted);
        assert!(b.closed.is_cancelled(), "b was the least recently active");
        assert!(!a.closed.is_cancelled() && !c.closed.is_cancelled());
        assert_eq!(conns.open.len(), 2);
    }

    #[test]
    fn accept_errors_back_off_and_log_rarely() {
        let mut errors = AcceptErrors::default();
        let e = io::Error::from_raw_os_error(libc::EMFILE);
        let waits: Vec<Duration> = (0..10).map(|_| errors.failed(&e)).collect();
        assert_eq!(waits[0], Duration::from_millis(10));
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*waits.last().unwrap(), Duration::from_millis(640));
        assert_eq!(errors.unlogged, 9, "one log line for the burst");
        errors.recovered();
        assert_eq!(errors.failed(&e), Duration::from_millis(10));
    }

    #[test]
    fn a_stuck_loop_fails_liveness() {
        let probes = Probes::new(Duration::from_millis(20));
        assert!(probes.healthy());
        probes.set_busy(true);
        assert!(probes.healthy(), "busy, but not for long");
        std::thread::sleep(Duration::from_millis(40));
        assert!(!probes.healthy(), "busy for longer than the timeout");
        probes.set_busy(false);
        assert!(probes.healthy());
    }
}
