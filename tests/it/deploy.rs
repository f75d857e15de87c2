//! `deploy/` against a real kube-apiserver: every manifest passes a server-side apply dry run with
//! strict field validation, and the workloads are locked down as promised.

use std::path::Path;
use std::process::Command;

use crate::support::cluster::*;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_yaml_ng::Value;

fn deploy() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy"))
}

fn kubectl_dry_run(cluster: &Cluster, args: &[&str]) -> std::process::Output {
    Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args([
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=strict",
        ])
        .args(args)
        .output()
        .expect("run kubectl")
}

/// `kubectl apply -k dir` passes a server-side dry run and names each of `objects`.
fn dry_run_creates(cluster: &Cluster, dir: &Path, objects: &[&str]) {
    let out = kubectl_dry_run(cluster, &["-k", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for object in objects {
        assert!(stdout.contains(object), "{object} missing from:\n{stdout}");
    }
}

#[tokio::test]
async fn every_manifest_passes_a_server_side_dry_run() {
    let _turn = serial().await;
    let cluster = Cluster::start();
    let client = cluster.client().await;
    // A dry run persists nothing, so what the rest depends on is created for real first.
    cluster.install_crds(&client).await;
    let ns: Namespace = serde_yaml_ng::from_str("metadata: {name: monitoring}").unwrap();
    let _ = Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await;

    dry_run_creates(
        &cluster,
        deploy(),
        &[
            "customresourcedefinition.apiextensions.k8s.io/prometheuses.monitoring.coreos.com",
            "clusterrole.rbac.authorization.k8s.io/promreload-reconciler",
            "deployment.apps/promreload-reconciler",
            "statefulset.apps/prometheus-k8s",
            "prometheus.monitoring.coreos.com/k8s",
            "servicemonitor.monitoring.coreos.com/promreload-reconciler",
            "podmonitor.monitoring.coreos.com/promreload-sidecar",
            "prometheusrule.monitoring.coreos.com/promreload",
            "configmap/promreload-dashboard",
        ],
    );

    // The API-mode overlay: the same objects, its Role, and both reloader containers reading
    // the Secret through the API (the patch's `test` ops fail if deploy/ moves the env).
    dry_run_creates(
        &cluster,
        &deploy().join("api-mode"),
        &[
            "role.rbac.authorization.k8s.io/promreload-config-secret",
            "rolebinding.rbac.authorization.k8s.io/promreload-config-secret",
            "statefulset.apps/prometheus-k8s",
        ],
    );
    let rendered = Command::new(kubectl())
        .args(["kustomize", deploy().join("api-mode").to_str().unwrap()])
        .output()
        .unwrap();
    let rendered = String::from_utf8_lossy(&rendered.stdout);
    assert_eq!(
        rendered.matches("name: RELOADER_CONFIG_SECRET\n").count(),
        2,
        "{rendered}"
    );
    assert!(!rendered.contains("RELOADER_CONFIG_FILE"), "{rendered}");
    assert!(
        !rendered.contains("secretName: prometheus-k8s\n"),
        "no Secret volume: {rendered}"
    );
    assert!(
        !rendered.contains("mountPath: /etc/prometheus/config\n"),
        "{rendered}"
    );

    // The check can fail: an unknown field is a schema error.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    let text = std::fs::read_to_string(deploy().join("reconciler/deployment.yaml")).unwrap();
    std::fs::write(
        &broken,
        text.replace("replicas: 1", "replicas: 1\n  replicaz: 2"),
    )
    .unwrap();
    let out = kubectl_dry_run(&cluster, &["-f", broken.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "a schema error must fail the dry run"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("replicaz"));
}

fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(deploy().join(file)).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

#[test]
fn workloads_are_locked_down_and_the_secret_is_mounted_whole() {
    for (file, kind) in [
        ("reconciler/deployment.yaml", "Deployment"),
        ("prometheus/statefulset.yaml", "StatefulSet"),
    ] {
        let doc = documents(file)
            .into_iter()
            .find(|d| d["kind"] == kind)
            .unwrap();
        let pod = &doc["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{file}");
        let containers = pod["containers"]
            .as_sequence()
            .unwrap()
            .iter()
            .chain(pod["initContainers"].as_sequence().into_iter().flatten());
        for c in containers {
            let sc = &c["securityContext"];
            assert_eq!(
                sc["allowPrivilegeEscalation"], false,
                "{file} {:?}",
                c["name"]
            );
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{file} {:?}", c["name"]);
            assert_eq!(
                sc["capabilities"]["drop"][0], "ALL",
                "{file} {:?}",
                c["name"]
            );
            assert!(
                c["resources"]["requests"]["memory"].is_string(),
                "{file} {:?}",
                c["name"]
            );
            for m in c["volumeMounts"].as_sequence().into_iter().flatten() {
                assert!(m["subPath"].is_null(), "a subPath mount is never updated");
            }
        }
        if kind == "StatefulSet" {
            let volumes = pod["volumes"].as_sequence().unwrap();
            let out = volumes.iter().find(|v| v["name"] == "config-out").unwrap();
            assert_eq!(out["emptyDir"]["medium"], "Memory");
            let sidecar = pod["containers"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|c| c["name"] == "config-reloader")
                .unwrap();
            assert_eq!(sidecar["livenessProbe"]["httpGet"]["path"], "/healthz");
            assert_eq!(sidecar["readinessProbe"]["httpGet"]["path"], "/readyz");
            let init = &pod["initContainers"][0]["env"];
            assert!(
                init.as_sequence()
                    .unwrap()
                    .iter()
                    .any(|e| e["name"] == "RELOADER_WATCH_INTERVAL" && e["value"] == "0")
            );
        }
    }
}
