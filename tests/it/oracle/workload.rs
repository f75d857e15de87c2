//! The real operator as the oracle for the objects that run a Prometheus: for each case in
//! `tests/oracle-workload/`, the operator and then the reconciler (`RECONCILER_RUN_PROMETHEUS`,
//! the operator's layout `RECONCILER_RELOADER_SOURCE=volume`, the reloader image set to the
//! operator's) run the same Prometheus against the same API
//! server, and their StatefulSets, governing Service and web-config Secret are compared as
//! the API server stores them, whole. Only what the server assigns (uid, versions, times,
//! managed fields, status) is left out, and the input-hash annotation is compared by
//! presence (each computes its own). Each case is a test (`cargo test --test it
//! oracle::workload::default_prometheus`).

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::Value;

use super::{ONE_CASE_AT_A_TIME, OPERATORS_RELOADER, Pending, apply_objects, objects};
use crate::support::cluster::*;

cases! {
    the_reconciler_runs_prometheus_as_the_operator_does;
    default_prometheus => "default-prometheus",
    pod_and_server_fields => "pod-and-server-fields",
    storage_shards_mounts_containers => "storage-shards-mounts-containers",
    listen_local_signal_older_version => "listen-local-signal-older-version",
}

/// Every file in `tests/oracle-workload/` is a case with a test, and every case has a file.
#[test]
fn every_case_file_is_a_test() {
    super::case_files_are_tests("tests/oracle-workload", CASES);
}

/// What the API server assigns, removed from a stored object; the input hash replaced by
/// whether it is there.
fn comparable(mut object: Value) -> Value {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "managedFields",
        ] {
            meta.remove(field);
        }
        if let Some(hash) = meta
            .get_mut("annotations")
            .and_then(|a| a.get_mut("prometheus-operator-input-hash"))
        {
            *hash = Value::String("<present>".into());
        }
    }
    if let Some(object) = object.as_object_mut() {
        object.remove("status");
    }
    object
}

/// The paths where two JSON values differ, with both sides.
fn differences(path: &str, theirs: &Value, ours: &Value, out: &mut Vec<String>) {
    match (theirs, ours) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                let null = Value::Null;
                let (x, y) = (a.get(key).unwrap_or(&null), b.get(key).unwrap_or(&null));
                differences(&format!("{path}.{key}"), x, y, out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), x, y, out);
            }
        }
        (x, y) if x != y => out.push(format!("{path}:\n  operator:   {x}\n  reconciler: {y}")),
        _ => {}
    }
}

/// The StatefulSets, Service and web-config Secret of `prometheus-k8s`, once `shards`
/// StatefulSets exist and nothing has changed for a second.
async fn settled_workload(
    client: &Client,
    ns: &str,
    shards: usize,
    log: &dyn Fn() -> String,
) -> Vec<(String, Value)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last: Option<Vec<(String, Value)>> = None;
    loop {
        assert!(
            Instant::now() < deadline,
            "no settled workload in {ns}: {last:#?}\n{}",
            log()
        );
        let statefulsets = Api::<StatefulSet>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels("operator.prometheus.io/name=k8s"))
            .await
            .unwrap();
        let service = Api::<Service>::namespaced(client.clone(), ns)
            .get_opt("prometheus-operated")
            .await
            .unwrap();
        let web = Api::<Secret>::namespaced(client.clone(), ns)
            .get_opt("prometheus-k8s-web-config")
            .await
            .unwrap();
        let mut current: Vec<(String, Value)> = statefulsets
            .items
            .into_iter()
            .map(|s| {
                let name = format!("StatefulSet {}", s.metadata.name.clone().unwrap());
                (name, comparable(serde_json::to_value(s).unwrap()))
            })
            .collect();
        current.sort_by(|a, b| a.0.cmp(&b.0));
        let complete = current.len() == shards && web.is_some();
        if let Some(service) = service {
            current.push((
                "Service prometheus-operated".into(),
                comparable(serde_json::to_value(service).unwrap()),
            ));
        }
        if let Some(web) = web {
            let web = comparable(serde_json::to_value(web).unwrap());
            current.push(("Secret prometheus-k8s-web-config".into(), web));
        }
        if complete && last.as_ref() == Some(&current) {
            return current;
        }
        last = Some(current);
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
}

/// Deletes what the operator wrote for `prometheus-k8s`, so the reconciler starts afresh.
async fn clear(client: &Client, ns: &str) {
    let gone = DeleteParams::default();
    Api::<StatefulSet>::namespaced(client.clone(), ns)
        .delete_collection(
            &gone,
            &ListParams::default().labels("operator.prometheus.io/name=k8s"),
        )
        .await
        .unwrap();
    let _ = Api::<Service>::namespaced(client.clone(), ns)
        .delete("prometheus-operated", &gone)
        .await;
    let secrets = Api::<Secret>::namespaced(client.clone(), ns);
    for name in [
        "prometheus-k8s",
        "prometheus-k8s-tls-assets-0",
        "prometheus-k8s-web-config",
    ] {
        let _ = secrets.delete(name, &gone).await;
    }
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .delete_collection(&gone, &ListParams::default().labels("prometheus-name=k8s"))
        .await
        .unwrap();
    // Gone for good before the reconciler starts, so nothing of the operator's is compared.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = Api::<StatefulSet>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels("operator.prometheus.io/name=k8s"))
            .await
            .unwrap();
        if left.items.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "StatefulSets not deleted in {ns}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One case: the operator runs it, then the reconciler.
async fn the_reconciler_runs_prometheus_as_the_operator_does(name: &str) {
    let pending = Pending::enter();
    let _turn = ONE_CASE_AT_A_TIME.lock().await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/oracle-workload/{name}.yaml"));
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let shards = regex::Regex::new(r"shards: (\d+)")
        .unwrap()
        .captures(&yaml)
        .map_or(1, |c| c[1].parse().unwrap());
    let cluster = pending.cluster();
    let client = cluster.client().await;
    let ns = unique(&format!("wl-{}", &name[..name.len().min(30)]));
    namespace(&client, &ns, &[]).await;
    apply_objects(&cluster, &objects(&yaml, &ns));

    let op = cluster.operator(&ns, OPERATORS_RELOADER);
    let theirs = settled_workload(&client, &ns, shards, &|| op.log()).await;
    drop(op);
    clear(&client, &ns).await;
    let reconciler = cluster.reconciler(&[
        ("RECONCILER_NAMESPACE", &ns),
        ("RECONCILER_RUN_PROMETHEUS", "true"),
        ("RECONCILER_RELOADER_SOURCE", "volume"),
        ("RECONCILER_RELOADER_IMAGE", OPERATORS_RELOADER),
    ]);
    let ours = settled_workload(&client, &ns, shards, &|| reconciler.process.log()).await;
    drop(reconciler);

    let mut failures = Vec::new();
    let names = |w: &[(String, Value)]| w.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    if names(&theirs) != names(&ours) {
        failures.push(format!(
            "objects differ: operator {:?}, reconciler {:?}",
            names(&theirs),
            names(&ours)
        ));
    }
    for ((name, a), (_, b)) in theirs.iter().zip(&ours) {
        differences(name, a, b, &mut failures);
    }
    eprintln!(
        "{name}: {} objects, {} differences",
        ours.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "case {name}:\n{}", failures.join("\n"));
}
