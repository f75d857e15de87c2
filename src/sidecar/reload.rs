//! Telling Prometheus to reload: `POST` to the reload URL with no body, a per-request timeout,
//! and success only on a 2xx answer. Redirects are not followed (a `POST` turned into a `GET`
//! reloads nothing); the user is told where the URL points instead.
//!
//! [`backoff`] computes the wait before the next attempt after failures.

use std::time::Duration;

use reqwest::{Client, Url, redirect};

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
    /// Any other transport failure.
    #[error("reload request to {url} failed: {reason}")]
    Request {
        /// The reload URL.
        url: String,
        /// The cause.
        reason: String,
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
        }
    }
}

/// Reloads Prometheus over HTTP.
#[derive(Debug, Clone)]
pub struct HttpReloader {
    client: Client,
    url: Url,
    timeout: Duration,
}

impl HttpReloader {
    /// A reloader posting to `url`, giving up on one request after `timeout`.
    pub fn new(url: Url, timeout: Duration) -> reqwest::Result<Self> {
        let client = Client::builder()
            .redirect(redirect::Policy::none())
            .user_agent(concat!("promreload/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            url,
            timeout,
        })
    }

    /// Sends one reload request.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let url = self.url.to_string();
        let response = self
            .client
            .post(self.url.clone())
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
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
            url,
            status: status.as_u16(),
            body,
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> ReloadError {
        let url = self.url.to_string();
        if e.is_timeout() {
            ReloadError::Timeout {
                url,
                timeout: self.timeout,
            }
        } else if e.is_connect() {
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
