//! The little of the Kubernetes API that API mode needs: get, list and watch one Secret, over
//! the `reqwest` client the sidecar already has for reloads. A full Kubernetes client
//! (kube-client and its hyper/tower stack) doubled the binary and added 1.6 MiB of idle RSS to
//! the file mode too; this keeps the sidecar lean.
//!
//! A token file is read again for every request (client-go re-reads it each minute), so the
//! kubelet's rotation of the projected service-account token is picked up by the next list
//! or watch.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use reqwest::{Certificate, Client, Identity, RequestBuilder, StatusCode, Url};
use serde::Deserialize;

use super::kubeconfig::{self, ConfigError, Credentials};

/// A watch is closed by the API server after this long (and re-opened from where it was).
const WATCH_SECONDS: u64 = 240;
/// A list or get that takes longer than this failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest watch event line accepted: a Secret is at most 1 MiB, base64 in JSON 4/3 of
/// that; anything far longer is not a Secret.
const MAX_EVENT_BYTES: usize = 8 << 20;

/// Why a request to the API server failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No answer: connection refused or reset, DNS, TLS, timeout.
    #[error("cannot reach the API server: {0}")]
    Unreachable(String),
    /// The API server answered with an error status.
    #[error("the API server answered {code}: {message}")]
    Status {
        /// The HTTP status.
        code: u16,
        /// The API server's message.
        message: String,
    },
    /// The answer is not what the API returns.
    #[error("unexpected answer from the API server: {0}")]
    Decode(String),
    /// The token file could not be read.
    #[error("{0}")]
    Credentials(String),
}

impl ApiError {
    /// A short metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "unreachable",
            Self::Status { code: 401, .. } => "unauthorized",
            Self::Status { code: 403, .. } => "forbidden",
            Self::Status { code: 410, .. } => "expired",
            Self::Status { .. } | Self::Decode(_) => "api_error",
            Self::Credentials(_) => "credentials",
        }
    }

    /// The resourceVersion is too old to resume from: list again.
    pub fn expired(&self) -> bool {
        matches!(self, Self::Status { code: 410, .. })
    }
}

/// Why no client could be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// No usable configuration.
    #[error("API mode: {0}")]
    Config(#[from] ConfigError),
    /// The configuration's TLS material or URL is unusable.
    #[error("API mode: {what}: {reason}")]
    Unusable {
        /// What.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// A client for one namespace's Secrets.
#[derive(Debug)]
pub struct ApiClient {
    http: Client,
    base: Url,
    credentials: Credentials,
    /// The namespace the configuration names (the Pod's own in a cluster).
    pub default_namespace: String,
}

/// One watch event.
#[derive(Debug)]
pub enum Change {
    /// The Secret was created or modified.
    Applied(Box<Secret>),
    /// The Secret was deleted.
    Deleted(Option<String>),
    /// Nothing changed; resume from this resourceVersion.
    Bookmark(Option<String>),
}

#[derive(Deserialize)]
struct List {
    metadata: ListMeta,
    items: Vec<Secret>,
}

#[derive(Deserialize)]
struct ListMeta {
    #[serde(rename = "resourceVersion")]
    resource_version: Option<String>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    object: serde_json::Value,
}

#[derive(Deserialize)]
struct Status {
    code: Option<u16>,
    message: Option<String>,
}

impl ApiClient {
    /// The client the environment describes: `KUBECONFIG` (or `~/.kube/config`), else the
    /// in-cluster service account.
    pub fn infer() -> Result<Self, SetupError> {
        let config = kubeconfig::infer()?;
        let unusable = |what: &'static str, e: &dyn std::fmt::Display| SetupError::Unusable {
            what,
            reason: e.to_string(),
        };
        let mut builder = Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .tcp_keepalive(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .danger_accept_invalid_certs(config.insecure);
        if let Some(proxy) = &config.proxy {
            let proxy = reqwest::Proxy::all(proxy).map_err(|e| unusable("proxy-url", &e))?;
            builder = builder.proxy(proxy);
        }
        if let Some(pem) = &config.ca_pem {
            // The cluster's CAs alone, as client-go trusts them.
            builder = builder.tls_built_in_root_certs(false);
            let certs = Certificate::from_pem_bundle(pem)
                .map_err(|e| unusable("the cluster's CA certificate", &e))?;
            if certs.is_empty() {
                return Err(unusable(
                    "the cluster's CA certificate",
                    &"no PEM certificate",
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(pem) = &config.identity_pem {
            let identity = Identity::from_pem(pem)
                .map_err(|e| unusable("the client certificate and key", &e))?;
            builder = builder.identity(identity);
        }
        let http = builder
            .build()
            .map_err(|e| unusable("the HTTP client", &e))?;
        let mut base =
            Url::parse(&config.server).map_err(|e| unusable("the API server's URL", &e))?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Self {
            http,
            base,
            credentials: config.credentials,
            default_namespace: config.namespace,
        })
    }

    /// Secret `name` in `namespace`, or `None` if there is none.
    pub async fn get(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ApiError> {
        let path = format!("api/v1/namespaces/{namespace}/secrets/{name}");
        let response = self
            .send(self.request(&path, &[])?.timeout(REQUEST_TIMEOUT))
            .await;
        match response {
            Err(ApiError::Status { code: 404, .. }) => Ok(None),
            Err(e) => Err(e),
            Ok(response) => decode(&read_all(response).await?).map(Some),
        }
    }

    /// Lists Secret `name` alone (a field selector on its name, which a Role limited to that
    /// name by `resourceNames` allows): the Secret if it exists, and the resourceVersion to
    /// watch from.
    pub async fn list(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(Option<Secret>, String), ApiError> {
        let selector = format!("metadata.name={name}");
        let path = format!("api/v1/namespaces/{namespace}/secrets");
        let request = self.request(&path, &[("fieldSelector", &selector)])?;
        let response = self.send(request.timeout(REQUEST_TIMEOUT)).await?;
        let list: List = decode(&read_all(response).await?)?;
        let version = list
            .metadata
            .resource_version
            .ok_or_else(|| ApiError::Decode("a list without a resourceVersion".into()))?;
        let secret = list
            .items
            .into_iter()
            .find(|s| s.metadata.name.as_deref() == Some(name));
        Ok((secret, version))
    }

    /// Watches Secret `name` from `version`: the open watch, whose events [`Watch::next`]
    /// yields until the API server closes it.
    pub async fn watch(
        &self,
        namespace: &str,
        name: &str,
        version: &str,
    ) -> Result<Watch, ApiError> {
        let selector = format!("metadata.name={name}");
        let seconds = WATCH_SECONDS.to_string();
        let path = format!("api/v1/namespaces/{namespace}/secrets");
        let request = self.request(
            &path,
            &[
                ("fieldSelector", &selector),
                ("watch", "true"),
                ("resourceVersion", version),
                ("allowWatchBookmarks", "true"),
                ("timeoutSeconds", &seconds),
            ],
        )?;
        // A connection that dies silently ends with the client's own deadline.
        let deadline = Duration::from_secs(WATCH_SECONDS + 30);
        let response = self.send(request.timeout(deadline)).await?;
        Ok(Watch {
            response,
            buffer: Vec::new(),
        })
    }

    fn request(&self, path: &str, query: &[(&str, &str)]) -> Result<RequestBuilder, ApiError> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| ApiError::Decode(format!("URL for {path}: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let request = self.http.get(url).header("accept", "application/json");
        Ok(match &self.credentials {
            Credentials::None => request,
            Credentials::Token(token) => request.bearer_auth(token),
            Credentials::TokenFile(path) => request.bearer_auth(read_token(path)?),
            Credentials::Basic(user, password) => request.basic_auth(user, Some(password)),
        })
    }

    async fn send(&self, request: RequestBuilder) -> Result<reqwest::Response, ApiError> {
        let response = request
            .send()
            .await
            .map_err(|e| ApiError::Unreachable(error_chain(&e)))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let code = response.status();
        let body = read_all(response).await.unwrap_or_default();
        let message = serde_json::from_slice::<Status>(&body)
            .ok()
            .and_then(|s| s.message)
            .unwrap_or_else(|| code.canonical_reason().unwrap_or("").to_string());
        Err(ApiError::Status {
            code: code.as_u16(),
            message,
        })
    }
}

/// An open watch.
#[derive(Debug)]
pub struct Watch {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Watch {
    /// The next event; `None` when the API server closed the watch (its timeout).
    pub async fn next(&mut self) -> Option<Result<Change, ApiError>> {
        loop {
            if let Some(end) = memchr::memchr(b'\n', &self.buffer) {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(parse_event(&line));
            }
            if self.buffer.len() > MAX_EVENT_BYTES {
                return Some(Err(ApiError::Decode(format!(
                    "a watch event over {MAX_EVENT_BYTES} bytes"
                ))));
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) if self.buffer.is_empty() => return None,
                Ok(None) => {
                    return Some(Err(ApiError::Unreachable(
                        "the watch ended in the middle of an event".into(),
                    )));
                }
                Err(e) => return Some(Err(ApiError::Unreachable(error_chain(&e)))),
            }
        }
    }
}

fn parse_event(line: &[u8]) -> Result<Change, ApiError> {
    let event: Event = decode(line)?;
    let version = |object: &serde_json::Value| {
        object["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_string)
    };
    match event.kind.as_str() {
        "ADDED" | "MODIFIED" => serde_json::from_value(event.object)
            .map(|s| Change::Applied(Box::new(s)))
            .map_err(|e| ApiError::Decode(e.to_string())),
        "DELETED" => Ok(Change::Deleted(version(&event.object))),
        "BOOKMARK" => Ok(Change::Bookmark(version(&event.object))),
        "ERROR" => {
            let status: Status = serde_json::from_value(event.object)
                .map_err(|e| ApiError::Decode(e.to_string()))?;
            Err(ApiError::Status {
                code: status.code.unwrap_or(500),
                message: status.message.unwrap_or_default(),
            })
        }
        other => Err(ApiError::Decode(format!("watch event type {other:?}"))),
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::Decode(e.to_string()))
}

async fn read_all(response: reqwest::Response) -> Result<Vec<u8>, ApiError> {
    if response.status() == StatusCode::NO_CONTENT {
        return Ok(Vec::new());
    }
    response
        .bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| ApiError::Unreachable(error_chain(&e)))
}

fn read_token(path: &Path) -> Result<String, ApiError> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_string())
        .map_err(|e| ApiError::Credentials(format!("reading token file {}: {e}", path.display())))
}

/// An error with its causes, which reqwest keeps apart (`error sending request: connection
/// refused`).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_events_are_parsed_by_type() {
        let applied = br#"{"type":"MODIFIED","object":{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s","resourceVersion":"7"},"data":{"k":"eA=="}}}"#;
        let Ok(Change::Applied(secret)) = parse_event(applied) else {
            panic!("applied")
        };
        assert_eq!(secret.data.unwrap()["k"].0, b"x");
        let deleted = br#"{"type":"DELETED","object":{"metadata":{"resourceVersion":"8"}}}"#;
        assert!(matches!(parse_event(deleted), Ok(Change::Deleted(Some(v))) if v == "8"));
        let bookmark = br#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}"#;
        assert!(matches!(parse_event(bookmark), Ok(Change::Bookmark(Some(v))) if v == "9"));
        let gone = br#"{"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old resource version"}}"#;
        let error = parse_event(gone).unwrap_err();
        assert!(error.expired() && error.kind() == "expired", "{error}");
        assert_eq!(parse_event(b"{}").unwrap_err().kind(), "api_error");
    }
}
