//! Telling Prometheus to reload, and confirming it did.
//!
//! - **http**: `POST` to the reload URL with no body and a per-request timeout; success only
//!   on a 2xx answer. Redirects are not followed (a `POST` turned into a `GET` reloads
//!   nothing); the user is told where the URL points instead.
//! - **signal**: SIGHUP to the process found by executable name, then poll runtimeinfo until
//!   `lastConfigTime` advanced with `reloadConfigSuccess` true, within the reload timeout.
//!
//! [`backoff`] computes the wait before the next attempt after failures.

pub mod client;
pub mod signal;

use std::time::Duration;

use reqwest::{Method, Url};
use serde::Deserialize;
use tokio::time::{Instant, sleep, sleep_until};

use super::settings::{ReloadConfig, ReloadMethod};
use crate::settings::redacted_url;
use client::PromClient;

/// At most this much of an error response is kept (logs, `/status`).
const MAX_ERROR_BODY: usize = 512;

/// Why a reload failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReloadError {
    /// Nothing listens at the reload URL (Prometheus is starting or down).
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The reload URL.
        url: String,
        /// The cause.
        reason: String,
    },
    /// No answer within the reload timeout.
    #[error("no answer from {url} within {timeout:?}")]
    Timeout {
        /// The reload URL.
        url: String,
        /// The timeout.
        timeout: Duration,
    },
    /// Prometheus answered, but not with success (for example 500: the config was rejected).
    #[error("{url} answered {status}: {body}")]
    Status {
        /// The reload URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the response body, or where a redirect pointed.
        body: String,
    },
    /// Any other transport failure (including certificate verification).
    #[error("request to {url} failed: {reason}")]
    Request {
        /// The URL.
        url: String,
        /// The cause.
        reason: String,
    },
    /// A CA, certificate, key, password or token file is missing or unusable.
    #[error("reload credentials: {reason}")]
    Credentials {
        /// Which file and why (never its content).
        reason: String,
    },
    /// Signal mode: no process to signal, or no right to signal it.
    #[error("{reason}")]
    Process {
        /// The cause.
        reason: String,
    },
    /// Signal mode: Prometheus reports that loading the new config failed.
    #[error("Prometheus reports the reload failed (reloadConfigSuccess false at {url})")]
    Rejected {
        /// The runtimeinfo URL.
        url: String,
    },
    /// Signal mode: the reload was not confirmed in time.
    #[error("reload not confirmed by {url} within {timeout:?}")]
    Unconfirmed {
        /// The runtimeinfo URL.
        url: String,
        /// The reload timeout.
        timeout: Duration,
    },
}

impl ReloadError {
    /// A short, stable label for failure counters.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "connect",
            Self::Timeout { .. } => "timeout",
            Self::Status { .. } => "status",
            Self::Request { .. } => "request",
            Self::Credentials { .. } => "credentials",
            Self::Process { .. } => "process",
            Self::Rejected { .. } => "rejected",
            Self::Unconfirmed { .. } => "unconfirmed",
        }
    }
}

/// Reloads Prometheus by HTTP or by signal.
#[derive(Debug)]
pub struct Reloader {
    config: ReloadConfig,
    client: PromClient,
}

/// The part of `/api/v1/status/runtimeinfo` signal mode reads.
#[derive(Debug, Deserialize)]
struct RuntimeInfo {
    data: RuntimeData,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeData {
    reload_config_success: bool,
    last_config_time: String,
}

/// How often signal mode polls runtimeinfo while waiting for confirmation.
const CONFIRM_POLL: Duration = Duration::from_millis(100);

impl Reloader {
    /// A reloader for `config`; call [`Reloader::check`] to fail fast on bad credentials.
    pub fn new(config: &ReloadConfig) -> Self {
        Self {
            client: PromClient::new(config.tls.clone(), config.auth.clone()),
            config: config.clone(),
        }
    }

    /// Reads every credential and TLS file once.
    pub fn check(&mut self) -> Result<(), ReloadError> {
        self.client.check()
    }

    /// Where reloads go, for logs.
    pub fn target(&self) -> String {
        match &self.config.method {
            ReloadMethod::Http => redacted_url(&self.config.url),
            ReloadMethod::Signal { process_name } => format!("SIGHUP to {process_name}"),
        }
    }

    /// Whether something accepts TCP connections where reloads go (the reload URL, or the
    /// runtimeinfo URL in signal mode): a cheap probe while Prometheus is down.
    pub async fn reachable(&self) -> bool {
        let url = match self.config.method {
            ReloadMethod::Http => &self.config.url,
            ReloadMethod::Signal { .. } => &self.config.runtimeinfo_url,
        };
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let connect = tokio::net::TcpStream::connect((host, port));
        let limit = self.config.timeout.min(Duration::from_secs(1));
        matches!(tokio::time::timeout(limit, connect).await, Ok(Ok(_)))
    }

    /// One reload attempt.
    pub async fn reload(&mut self) -> Result<(), ReloadError> {
        match self.config.method.clone() {
            ReloadMethod::Http => self.post().await,
            ReloadMethod::Signal { process_name } => self.signal(&process_name).await,
        }
    }

    async fn post(&mut self) -> Result<(), ReloadError> {
        let url = self.config.url.clone();
        let response = self
            .client
            .request(Method::POST, &url, self.config.timeout)?
            .send()
            .await
            .map_err(|e| transport_error(&url, self.config.timeout, e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = if status.is_redirection() {
            let to = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?");
            format!("redirect to {to} not followed; point the reload URL at the final address")
        } else {
            read_prefix(response, MAX_ERROR_BODY).await
        };
        Err(ReloadError::Status {
            url: redacted_url(&url),
            status: status.as_u16(),
            body,
        })
    }

    async fn signal(&mut self, process_name: &str) -> Result<(), ReloadError> {
        let deadline = Instant::now() + self.config.timeout;
        let before = self.runtime_info(deadline).await?;
        let before_secs = signal::parse_rfc3339_secs(&before.last_config_time).unwrap_or(0);
        // lastConfigTime has whole seconds: a reload in the same second as the previous
        // success could not be told apart, so wait for the next second first.
        if before_secs >= signal::now_secs() {
            let wait = Duration::from_secs((before_secs + 1 - signal::now_secs()).max(0) as u64);
            sleep(wait.min(Duration::from_secs(1))).await;
        }
        let pid = signal::find_process(process_name)
            .map_err(|e| ReloadError::Process {
                reason: format!("listing /proc: {e}"),
            })?
            .ok_or_else(|| ReloadError::Process {
                reason: format!(
                    "no process named {process_name:?} (signal mode needs shareProcessNamespace: true)"
                ),
            })?;
        signal::sighup(pid).map_err(|e| ReloadError::Process {
            reason: format!("sending SIGHUP to {process_name} (pid {pid}): {e}"),
        })?;
        self.confirm(before_secs, before.reload_config_success, deadline)
            .await
    }

    /// Polls runtimeinfo until the reload shows, fails, or the deadline passes.
    async fn confirm(
        &mut self,
        before_secs: i64,
        before_success: bool,
        deadline: Instant,
    ) -> Result<(), ReloadError> {
        let url = redacted_url(&self.config.runtimeinfo_url);
        loop {
            sleep_until((Instant::now() + CONFIRM_POLL).min(deadline)).await;
            // Prometheus may be busy loading: a failed poll is retried until the deadline.
            if let Ok(info) = self.runtime_info(deadline).await {
                let secs = signal::parse_rfc3339_secs(&info.last_config_time).unwrap_or(0);
                if secs > before_secs && info.reload_config_success {
                    return Ok(());
                }
                if before_success && !info.reload_config_success {
                    return Err(ReloadError::Rejected { url });
                }
            }
            if Instant::now() >= deadline {
                return Err(ReloadError::Unconfirmed {
                    url,
                    timeout: self.config.timeout,
                });
            }
        }
    }

    async fn runtime_info(&mut self, deadline: Instant) -> Result<RuntimeData, ReloadError> {
        let url = self.config.runtimeinfo_url.clone();
        let timeout = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let response = self
            .client
            .request(Method::GET, &url, timeout)?
            .send()
            .await
            .map_err(|e| transport_error(&url, timeout, e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ReloadError::Status {
                url: redacted_url(&url),
                status: status.as_u16(),
                body: read_prefix(response, MAX_ERROR_BODY).await,
            });
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(&url, timeout, e))?;
        serde_json::from_slice::<RuntimeInfo>(&body)
            .map(|i| i.data)
            .map_err(|e| ReloadError::Request {
                url: redacted_url(&url),
                reason: format!("unexpected runtimeinfo answer: {e}"),
            })
    }
}

fn transport_error(url: &Url, timeout: Duration, e: reqwest::Error) -> ReloadError {
    let url = redacted_url(url);
    if e.is_timeout() {
        ReloadError::Timeout { url, timeout }
    } else if e.is_connect() && !is_tls_error(&e) {
        ReloadError::Connect {
            url,
            reason: root_cause(&e),
        }
    } else {
        ReloadError::Request {
            url,
            reason: root_cause(&e),
        }
    }
}

/// Certificate problems surface as connect errors; they are not "Prometheus is down".
fn is_tls_error(e: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<rustls::Error>() {
            return true;
        }
        // io::Error's source() skips the error it wraps (often another io::Error around
        // the rustls error): descend into it explicitly.
        cause = match c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => c.source(),
        };
    }
    false
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Reads at most `limit` bytes of the body, as trimmed lossy UTF-8.
async fn read_prefix(mut response: reqwest::Response, limit: usize) -> String {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(limit);
    String::from_utf8_lossy(&body).trim().to_string()
}

/// The wait before retry number `attempt` (1 = first retry): exponential growth from `base`
/// to `cap`, with jitter spread over the upper half so retries of many Pods do not align, and
/// never shorter than `base`. `unit` is a uniform random number in `[0, 1)`.
pub fn backoff(attempt: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let ceiling = base.saturating_mul(1 << exp).min(cap);
    let floor = (ceiling / 2).max(base).min(ceiling);
    floor + (ceiling - floor).mul_f64(unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn backoff_grows_to_the_cap_and_stays_there() {
        let cap = Duration::from_secs(60);
        assert_eq!(backoff(1, S, cap, 0.0), S);
        assert_eq!(backoff(1, S, cap, 0.99), S);
        assert_eq!(backoff(2, S, cap, 0.0), S);
        assert_eq!(backoff(2, S, cap, 1.0), 2 * S);
        assert_eq!(backoff(4, S, cap, 0.0), 4 * S);
        assert_eq!(backoff(4, S, cap, 1.0), 8 * S);
        assert_eq!(backoff(7, S, cap, 1.0), cap);
        assert_eq!(backoff(u32::MAX, S, cap, 1.0), cap);
        assert_eq!(backoff(u32::MAX, S, cap, 0.0), cap / 2);
    }

    #[test]
    fn backoff_stays_within_bounds_for_any_jitter() {
        let cap = Duration::from_secs(60);
        for attempt in 1..40 {
            for i in 0..10 {
                let d = backoff(attempt, S, cap, f64::from(i) / 10.0);
                assert!(d >= S && d <= cap, "attempt {attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn labels_are_stable() {
        let e = ReloadError::Status {
            url: "u".into(),
            status: 500,
            body: "bad".into(),
        };
        assert_eq!(e.metric_label(), "status");
        assert_eq!(e.to_string(), "u answered 500: bad");
    }
}
