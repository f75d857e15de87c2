//! The reconciler running Prometheus (`RECONCILER_RUN_PROMETHEUS`) against a real
//! kube-apiserver: API mode's Role and RoleBinding (and the operator's layout by annotation),
//! StatefulSets follow the spec (shards, replicas, a field the API server
//! does not let change), the shared governing Service keeps every owner, a Prometheus whose
//! Pods cannot run is refused with the field named and what runs is left as it is, a paused
//! one is not touched, and a restart over unchanged objects writes nothing. (Pods, probes
//! and garbage collection need a node and a controller manager: `node::`.)

use crate::support::cluster::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use promreload::reconciler::crd::Prometheus;

/// Applies Prometheus `name` in `ns` with `spec` (flow YAML).
async fn prometheus(client: &Client, ns: &str, name: &str, spec: &str) {
    let yaml = format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {spec}\n"
    );
    apply::<Prometheus>(client, ns, &yaml).await;
}

/// The `Reconciled` condition's status, reason and message.
async fn condition(client: &Client, ns: &str, name: &str) -> Option<(String, String, String)> {
    let p = Api::<Prometheus>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .ok()?;
    let c = p
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Reconciled")?;
    Some((c.status, c.reason, c.message))
}

/// The status of Prometheus `k8s`.
async fn prometheus_status(
    client: &Client,
    ns: &str,
) -> promreload::reconciler::crd::PrometheusStatus {
    Api::<Prometheus>::namespaced(client.clone(), ns)
        .get("k8s")
        .await
        .unwrap()
        .status
        .unwrap_or_default()
}

/// The StatefulSets of Prometheus `k8s`, by name.
async fn statefulsets(client: &Client, ns: &str) -> Vec<StatefulSet> {
    let mut list = Api::<StatefulSet>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("operator.prometheus.io/name=k8s"))
        .await
        .unwrap()
        .items;
    list.sort_by_key(|s| s.name_any());
    list
}

fn replicas(s: &StatefulSet) -> Option<i32> {
    s.spec.as_ref()?.replicas
}

#[tokio::test]
async fn statefulsets_follow_the_spec_and_pods_that_cannot_run_are_refused() {
    let _turn = serial().await;
    let cluster = Cluster::start();
    let client = cluster.client().await;
    cluster.install_crds(&client).await;
    let ns = unique("run");
    namespace(&client, &ns, &[]).await;
    let c = &client;
    let ns = ns.as_str();
    prometheus(c, ns, "k8s", "{serviceMonitorSelector: {}, shards: 2}").await;
    // `other` in the operator's layout, by its annotation; `k8s` in API mode (the default).
    let other = format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: other, namespace: {ns}, annotations: {{promreload.io/reloader-source: volume}}}}\nspec: {{serviceMonitorSelector: {{}}}}\n"
    );
    apply::<Prometheus>(c, ns, &other).await;
    let reconciler = cluster.reconciler(&[
        ("RECONCILER_NAMESPACE", ns),
        ("RECONCILER_RUN_PROMETHEUS", "true"),
    ]);
    eventually("a StatefulSet per shard", || async {
        let names: Vec<_> = statefulsets(c, ns)
            .await
            .iter()
            .map(|s| s.name_any())
            .collect();
        names == ["prometheus-k8s", "prometheus-k8s-shard-1"]
    })
    .await;
    eventually(
        "the governing Service is owned by both Prometheuses",
        || async {
            Api::<Service>::namespaced(c.clone(), ns)
                .get_opt("prometheus-operated")
                .await
                .unwrap()
                .is_some_and(|s| {
                    let mut owners: Vec<_> = s
                        .owner_references()
                        .iter()
                        .map(|o| o.name.clone())
                        .collect();
                    owners.sort();
                    owners == ["k8s", "other"]
                })
        },
    )
    .await;
    eventually("the condition counts the StatefulSets", || async {
        condition(c, ns, "k8s")
            .await
            .is_some_and(|(status, reason, message)| {
                status == "True"
                    && reason == "Reconciled"
                    && message.ends_with("2 StatefulSets of 1 replicas")
            })
    })
    .await;
    // No controller manager here, so no Pods: the status says so, as the operator's does.
    let status = prometheus_status(c, ns).await;
    let available = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Available")
        .unwrap();
    assert_eq!(
        (available.status.as_str(), available.reason.as_str()),
        ("False", "NoPodReady")
    );
    assert!(
        available
            .message
            .contains("shard 1: 0 of 1 Pods ready (prometheus-k8s-shard-1)")
    );
    assert_eq!(
        (status.shards, status.replicas, status.paused),
        (Some(2), Some(0), Some(false))
    );
    let shard_ids: Vec<_> = status
        .shard_statuses
        .iter()
        .map(|s| s.shard_id.as_str())
        .collect();
    assert_eq!(shard_ids, ["0", "1"]);
    assert!(
        status
            .selector
            .unwrap()
            .contains("operator.prometheus.io/name=k8s")
    );
    // API mode: a Role to read the one config Secret, bound to the Pods' service account,
    // and no config volume; `other` has the operator's layout and no Role.
    let roles = Api::<Role>::namespaced(c.clone(), ns);
    let role = roles.get("prometheus-k8s-config-reader").await.unwrap();
    let rule = &role.rules.unwrap()[0];
    assert_eq!(
        rule.resource_names.as_deref(),
        Some(&["prometheus-k8s".to_string()][..])
    );
    let binding = Api::<RoleBinding>::namespaced(c.clone(), ns)
        .get("prometheus-k8s-config-reader")
        .await
        .unwrap();
    assert_eq!(binding.subjects.unwrap()[0].name, "default");
    assert!(
        roles
            .get_opt("prometheus-other-config-reader")
            .await
            .unwrap()
            .is_none()
    );
    let volume_names = |s: &StatefulSet| -> Vec<String> {
        let pod = s.spec.clone().unwrap().template.spec.unwrap();
        pod.volumes.unwrap().into_iter().map(|v| v.name).collect()
    };
    assert!(!volume_names(&statefulsets(c, ns).await[0]).contains(&"config".to_string()));
    let other_sts = Api::<StatefulSet>::namespaced(c.clone(), ns)
        .get("prometheus-other")
        .await
        .unwrap();
    assert!(volume_names(&other_sts).contains(&"config".to_string()));
    // `kubectl get prometheus` shows the operator's columns.
    let table = kubectl_run(
        &cluster,
        &["get", "prometheus", "-n", ns, "k8s", "-o", "wide"],
        None,
    );
    let header: Vec<_> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "VERSION",
            "DESIRED",
            "READY",
            "RECONCILED",
            "AVAILABLE",
            "AGE",
            "PAUSED"
        ]
    );

    // Fewer shards: the surplus one goes. More replicas: updated in place.
    let first_uid = statefulsets(c, ns).await[0].uid();
    prometheus(
        c,
        ns,
        "k8s",
        "{serviceMonitorSelector: {}, shards: 1, replicas: 2}",
    )
    .await;
    eventually("one StatefulSet of 2 replicas", || async {
        let list = statefulsets(c, ns).await;
        list.len() == 1 && replicas(&list[0]) == Some(2)
    })
    .await;
    assert_eq!(
        statefulsets(c, ns).await[0].uid(),
        first_uid,
        "updated in place"
    );

    // A claim template cannot be added to a StatefulSet: it is recreated.
    let claim = "storage: {volumeClaimTemplate: {spec: {resources: {requests: {storage: 1Gi}}}}}";
    prometheus(
        c,
        ns,
        "k8s",
        &format!("{{serviceMonitorSelector: {{}}, replicas: 2, {claim}}}"),
    )
    .await;
    // The reconciler deletes it in the foreground (its Pods first); the garbage collector's
    // part (there is no controller manager here) is done by hand: its finalizer removed.
    let sts_api = Api::<StatefulSet>::namespaced(c.clone(), ns);
    eventually("the StatefulSet is deleted in the foreground", || async {
        sts_api
            .get_opt("prometheus-k8s")
            .await
            .unwrap()
            .is_some_and(|s| {
                s.metadata.deletion_timestamp.is_some()
                    && s.finalizers().iter().any(|f| f == "foregroundDeletion")
            })
    })
    .await;
    let no_finalizers = serde_json::json!({"metadata": {"finalizers": null}});
    sts_api
        .patch(
            "prometheus-k8s",
            &PatchParams::default(),
            &Patch::Merge(&no_finalizers),
        )
        .await
        .unwrap();
    eventually(
        "the StatefulSet is recreated with its claim template",
        || async {
            statefulsets(c, ns).await.first().is_some_and(|s| {
                s.uid() != first_uid
                    && s.spec
                        .as_ref()
                        .unwrap()
                        .volume_claim_templates
                        .as_ref()
                        .is_some_and(|t| t.len() == 1)
            })
        },
    )
    .await;

    // Pods that cannot run: refused, naming the field; what runs is left as it is.
    let running = statefulsets(c, ns).await[0].resource_version();
    for (spec, field) in [
        (
            "secrets: [not-there]",
            "spec.secrets: Secret \"not-there\" does not exist",
        ),
        (
            "storage: {volumeClaimTemplate: {spec: {storageClassName: no-such-class}}}",
            "spec.storage.volumeClaimTemplate.spec.storageClassName: storage class \"no-such-class\" does not exist",
        ),
        (
            "image: 'quay.io/prometheus/prometheus:v3 beta'",
            "spec.image: ",
        ),
        (
            "storage: {emptyDir: {}, ephemeral: {}}",
            "spec.storage sets emptyDir and ephemeral",
        ),
        ("thanos: {version: v0.40.0}", "spec.thanos is not built"),
        (
            "additionalArgs: [{name: web.enable-lifecycle}]",
            "spec.additionalArgs: ",
        ),
        (
            "automountServiceAccountToken: false",
            "spec.automountServiceAccountToken is false",
        ),
    ] {
        prometheus(
            c,
            ns,
            "k8s",
            &format!("{{serviceMonitorSelector: {{}}, replicas: 3, {spec}}}"),
        )
        .await;
        eventually(&format!("{spec} is refused"), || async {
            condition(c, ns, "k8s")
                .await
                .is_some_and(|(status, reason, message)| {
                    status == "False"
                        && reason == "InvalidConfiguration"
                        && message.starts_with(field)
                })
        })
        .await;
        assert_eq!(
            statefulsets(c, ns).await[0].resource_version(),
            running,
            "{spec}: the running StatefulSet is untouched"
        );
    }

    // Paused: nothing is written, whatever the spec says.
    prometheus(
        c,
        ns,
        "k8s",
        &format!("{{serviceMonitorSelector: {{}}, replicas: 5, paused: true, {claim}}}"),
    )
    .await;
    eventually("the condition says Paused", || async {
        condition(c, ns, "k8s")
            .await
            .is_some_and(|(_, reason, _)| reason == "Paused")
    })
    .await;
    assert_eq!(prometheus_status(c, ns).await.paused, Some(true));
    assert_eq!(replicas(&statefulsets(c, ns).await[0]), Some(2));
    prometheus(
        c,
        ns,
        "k8s",
        &format!("{{serviceMonitorSelector: {{}}, replicas: 5, {claim}}}"),
    )
    .await;
    eventually("unpaused, the change is applied", || async {
        statefulsets(c, ns)
            .await
            .first()
            .is_some_and(|s| replicas(s) == Some(5))
    })
    .await;
    drop(reconciler);

    // A restart over unchanged objects writes nothing.
    let before = statefulsets(c, ns).await[0].resource_version();
    let reconciler = cluster.reconciler(&[
        ("RECONCILER_NAMESPACE", ns),
        ("RECONCILER_RUN_PROMETHEUS", "true"),
    ]);
    eventually("both Prometheuses are reconciled again", || async {
        reconciler
            .metric("promreload_reconciler_reconciliations_total")
            .await
            >= 2.0
    })
    .await;
    assert_eq!(
        reconciler
            .metric("promreload_reconciler_workload_writes_total")
            .await,
        0.0
    );
    assert_eq!(statefulsets(c, ns).await[0].resource_version(), before);
}

/// With deploy/'s RBAC and nothing more (the reconciler impersonates its ServiceAccount), it
/// runs a Prometheus: it creates the StatefulSet, Service, web-config Secret and API mode's
/// Role and RoleBinding (granting what it holds), and watches the StatefulSets it owns: one
/// deleted by hand is created again at once, not at the next resync.
#[tokio::test]
async fn deploys_rbac_is_enough_to_run_prometheus() {
    let _turn = serial().await;
    let cluster = Cluster::start();
    let client = cluster.client().await;
    cluster.install_crds(&client).await;
    let monitoring: k8s_openapi::api::core::v1::Namespace =
        serde_yaml_ng::from_str("metadata: {name: monitoring}").unwrap();
    let _ = Api::all(client.clone())
        .create(&Default::default(), &monitoring)
        .await;
    let rbac = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/reconciler/rbac.yaml"
    ))
    .unwrap();
    kubectl_run(&cluster, &["apply", "-f", "-"], Some(&rbac));
    let ns = unique("rbac");
    namespace(&client, &ns, &[]).await;
    let (c, ns) = (&client, ns.as_str());
    // The test's kubeconfig, acting as the reconciler's ServiceAccount.
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut config: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&cluster.kubeconfig).unwrap()).unwrap();
    for user in config["users"].as_sequence_mut().unwrap() {
        user["user"]["as"] = "system:serviceaccount:monitoring:promreload-reconciler".into();
    }
    std::fs::write(&kubeconfig, serde_yaml_ng::to_string(&config).unwrap()).unwrap();
    let as_sa = Cluster::at(kubeconfig);
    prometheus(c, ns, "k8s", "{serviceMonitorSelector: {}}").await;
    let _reconciler = as_sa.reconciler(&[
        ("RECONCILER_NAMESPACE", ns),
        ("RECONCILER_RUN_PROMETHEUS", "true"),
    ]);
    eventually("the Prometheus runs, with API mode's Role", || async {
        let role = Api::<Role>::namespaced(c.clone(), ns)
            .get_opt("prometheus-k8s-config-reader")
            .await
            .unwrap();
        role.is_some()
            && statefulsets(c, ns).await.len() == 1
            && condition(c, ns, "k8s")
                .await
                .is_some_and(|(status, _, _)| status == "True")
    })
    .await;
    let first = statefulsets(c, ns).await[0].uid();
    Api::<StatefulSet>::namespaced(c.clone(), ns)
        .delete("prometheus-k8s", &Default::default())
        .await
        .unwrap();
    eventually("the deleted StatefulSet is created again", || async {
        statefulsets(c, ns)
            .await
            .first()
            .is_some_and(|s| s.uid() != first)
    })
    .await;
}
