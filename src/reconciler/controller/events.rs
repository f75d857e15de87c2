//! Warning Events on rejected objects, each published once per reason.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::{Event, EventType};

use super::super::crd::Prometheus;
use super::super::render::Rejection;
use super::super::select::key;
use super::Context;

/// The reference of the object `ns/name` among `all`, for its Events.
pub(super) fn find<K: Resource<DynamicType = ()>>(
    all: &[K],
    ns: &str,
    name: &str,
) -> Option<ObjectReference> {
    all.iter()
        .find(|o| {
            o.meta().namespace.as_deref() == Some(ns) && o.meta().name.as_deref() == Some(name)
        })
        .map(|o| o.object_ref(&()))
}

/// Publishes a Warning Event on each rejected object of `kind` (once per reason), found by
/// `object_ref`, and forgets the ones of this kind that are valid again.
pub(super) async fn warn_rejected(
    ctx: &Context,
    prometheus: &Prometheus,
    kind: &str,
    rejected: &[Rejection],
    object_ref: impl Fn(&str) -> Option<ObjectReference>,
) {
    let suffix = format!(">{kind}>{}", key(prometheus));
    let current: Vec<String> = rejected
        .iter()
        .map(|r| format!("{}{suffix}", r.object))
        .collect();
    // An object that is valid again is forgotten, so a later relapse is reported.
    ctx.warned
        .lock()
        .await
        .retain(|id, _| !id.ends_with(&suffix) || current.contains(id));
    for (r, id) in rejected.iter().zip(&current) {
        let Some(object) = object_ref(&r.object) else {
            continue;
        };
        let note = format!("left out of Prometheus {}: {}", key(prometheus), r.reason);
        warn_once(ctx, id, &note, &object).await;
    }
}

/// Publishes a Warning Event `InvalidConfiguration` on `object`, once per distinct note.
pub(super) async fn warn_once(ctx: &Context, id: &str, note: &str, object: &ObjectReference) {
    {
        let mut warned = ctx.warned.lock().await;
        if warned.get(id).map(String::as_str) == Some(note) {
            return;
        }
        warned.insert(id.to_string(), note.to_string());
    }
    tracing::warn!(object = %id, %note, "InvalidConfiguration");
    let event = Event {
        type_: EventType::Warning,
        reason: "InvalidConfiguration".into(),
        note: Some(truncate(note, 1000)),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, object).await {
        tracing::warn!(%error, "cannot publish Event");
        ctx.warned.lock().await.remove(id);
    }
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
