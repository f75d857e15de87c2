//! An in-memory Kubernetes API for in-process tests of what a real API server does not do on
//! demand: refuse one write, fail one read, lose a create race. It keeps objects by path, answers
//! the requests the reconciler makes (GET, server-side apply and merge PATCH, POST, DELETE),
//! records every request, and answers a request matching an injected fault with that fault
//! instead. Everything else (admission, validation, field ownership) is the real API server's
//! job, and tested against one in `tests/it`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};

/// One request the client sent.
#[derive(Debug, Clone)]
pub struct Sent {
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, without `?`.
    pub query: String,
    /// The `Content-Type` header, or empty.
    pub content_type: String,
    /// The body as text.
    pub body: String,
}

/// An injected failure: requests with this method and path get this status.
struct Fault {
    method: &'static str,
    path: String,
    code: u16,
    reason: &'static str,
    /// How many more requests it answers; `None`: all of them.
    left: Option<usize>,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    faults: Vec<Fault>,
    sent: Vec<Sent>,
    version: u64,
}

/// The fake API server; clones share it.
#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

impl FakeApi {
    /// An empty API.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client talking to this API (default namespace `default`).
    pub fn client(&self) -> kube::Client {
        let api = self.clone();
        let service = tower::service_fn(move |req: Request<Body>| {
            let api = api.clone();
            async move { Ok::<_, std::convert::Infallible>(api.answer(req).await) }
        });
        kube::Client::new(service, "default")
    }

    /// Stores `object` at `path` (for example `/api/v1/namespaces/ns/secrets/name`).
    pub fn insert(&self, path: &str, object: impl serde::Serialize) {
        let object = serde_json::to_value(object).expect("an object serializes");
        self.lock().objects.insert(path.to_string(), object);
    }

    /// The object at `path`, deserialized.
    pub fn get<K: serde::de::DeserializeOwned>(&self, path: &str) -> Option<K> {
        let object = self.lock().objects.get(path).cloned()?;
        Some(serde_json::from_value(object).expect("a stored object deserializes"))
    }

    /// The paths of the objects under `prefix`.
    pub fn paths(&self, prefix: &str) -> Vec<String> {
        let state = self.lock();
        state
            .objects
            .keys()
            .filter(|p| p.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Every `method` request to `path` from now on fails with `code` and `reason`.
    pub fn fail(&self, method: &'static str, path: &str, code: u16, reason: &'static str) {
        self.add_fault(method, path, code, reason, None);
    }

    /// The next `method` request to `path` fails with `code` and `reason`.
    pub fn fail_once(&self, method: &'static str, path: &str, code: u16, reason: &'static str) {
        self.add_fault(method, path, code, reason, Some(1));
    }

    /// Requests to `path` are answered normally again.
    pub fn heal(&self, path: &str) {
        self.lock().faults.retain(|f| f.path != path);
    }

    fn add_fault(
        &self,
        method: &'static str,
        path: &str,
        code: u16,
        reason: &'static str,
        left: Option<usize>,
    ) {
        self.lock().faults.push(Fault {
            method,
            path: path.to_string(),
            code,
            reason,
            left,
        });
    }

    /// Every request so far, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.lock().sent.clone()
    }

    /// The requests so far that are not GETs, as `METHOD path`, in order.
    pub fn writes(&self) -> Vec<String> {
        self.lock()
            .sent
            .iter()
            .filter(|s| s.method != "GET")
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }

    /// Forgets the requests so far.
    pub fn clear_sent(&self) {
        self.lock().sent.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn answer(&self, req: Request<Body>) -> Response<Body> {
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or_default().to_string();
        let content_type = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = match req.into_body().collect().await {
            Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
            Err(error) => return reply(400, status(400, "BadRequest", &error.to_string())),
        };
        let mut state = self.lock();
        state.sent.push(Sent {
            method: method.clone(),
            path: path.clone(),
            query,
            content_type: content_type.clone(),
            body: body.clone(),
        });
        if let Some(fault) = state
            .faults
            .iter_mut()
            .find(|f| f.method == method && f.path == path && f.left != Some(0))
        {
            if let Some(left) = &mut fault.left {
                *left -= 1;
            }
            let (code, reason) = (fault.code, fault.reason);
            return reply(
                code,
                status(code, reason, &format!("{method} {path}: {reason}")),
            );
        }
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_str(&body) {
                Ok(body) => body,
                Err(error) => return reply(400, status(400, "BadRequest", &error.to_string())),
            }
        };
        state.handle(&method, &path, &content_type, body)
    }
}

impl State {
    fn handle(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Value,
    ) -> Response<Body> {
        match method {
            "GET" => match self.objects.get(path) {
                Some(object) => reply(200, object.clone()),
                None => not_found(path),
            },
            "POST" => {
                let name = body["metadata"]["name"].as_str().unwrap_or_default();
                let at = format!("{path}/{name}");
                if self.objects.contains_key(&at) {
                    return reply(
                        409,
                        status(409, "AlreadyExists", &format!("{at} already exists")),
                    );
                }
                let stored = self.store(&at, body);
                reply(201, stored)
            }
            "PATCH" => {
                let (target, status_only) = match path.strip_suffix("/status") {
                    Some(object) => (object, true),
                    None => (path, false),
                };
                let current = self.objects.get(target).cloned();
                let next = match (content_type, current) {
                    // Server-side apply of a subresource or a merge patch: merged in.
                    (_, Some(mut current)) if status_only => {
                        current["status"] = body["status"].clone();
                        current
                    }
                    (_, None) if status_only => return not_found(target),
                    ("application/apply-patch+yaml", _) => body,
                    ("application/merge-patch+json", Some(mut current)) => {
                        merge(&mut current, body);
                        current
                    }
                    ("application/merge-patch+json", None) => return not_found(target),
                    (other, _) => {
                        return reply(
                            415,
                            status(415, "UnsupportedMediaType", &format!("patch type {other}")),
                        );
                    }
                };
                let stored = self.store(target, next);
                reply(200, stored)
            }
            "DELETE" => match self.objects.remove(path) {
                Some(_) => reply(
                    200,
                    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
                ),
                None => not_found(path),
            },
            other => reply(405, status(405, "MethodNotAllowed", other)),
        }
    }

    /// Stores `object` at `path` with a new resource version; returns it as stored.
    fn store(&mut self, path: &str, mut object: Value) -> Value {
        self.version += 1;
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
        self.objects.insert(path.to_string(), object.clone());
        object
    }
}

/// JSON merge patch (RFC 7386).
fn merge(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = json!({});
            }
            for (key, value) in fields {
                if value.is_null() {
                    target.as_object_mut().map(|t| t.remove(&key));
                } else {
                    merge(&mut target[&key], value);
                }
            }
        }
        other => *target = other,
    }
}

fn not_found(path: &str) -> Response<Body> {
    reply(404, status(404, "NotFound", &format!("{path} not found")))
}

/// A `Status` failure as the API server sends it.
fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    })
}

fn reply(code: u16, body: Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(
            serde_json::to_vec(&body).expect("JSON serializes"),
        ))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge(&mut target, json!({"a": "z", "c": {"f": null}}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}}));
    }
}
