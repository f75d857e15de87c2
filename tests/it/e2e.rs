//! The whole chain, all real but the kubelet: a ServiceMonitor written to a real
//! kube-apiserver -> promreload-reconciler -> Secret -> a test kubelet projecting it with the
//! AtomicWriter's symlink dance -> promreload (init, then sidecar) -> a real Prometheus (with
//! Kubernetes SD) serving the job, `$(POD_NAME)` and `$(SHARD)` expanded.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use crate::support::cluster::*;
use crate::support::pod::*;
use crate::support::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use promreload::reconciler::crd::{Prometheus as PrometheusObject, ServiceMonitor};
use serde_json::json;

/// Projects Secret `name` into `volume` whenever it changes, as the kubelet does (without
/// its 60-90 s sync delay).
fn test_kubelet(client: kube::Client, ns: &str, name: &str, mut volume: KubeletVolume) {
    let api: Api<Secret> = Api::namespaced(client, ns);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    tokio::spawn(async move {
        let stream = watcher(api, config);
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            let secret = match event {
                Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => s,
                _ => continue,
            };
            let files: BTreeMap<String, Vec<u8>> = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            let refs: Vec<(&str, &[u8])> = files
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect();
            volume.update(&refs);
        }
    });
}

/// The Prometheus Pod of Prometheus `k8s` in `ns`: its config Secret projected by the test
/// kubelet, promreload as init container then sidecar, and a real Prometheus started with
/// `opts`. Returns once the first reload succeeded.
async fn prometheus_pod(
    client: &kube::Client,
    ns: &str,
    opts: PromOptions,
) -> (Pod, Prometheus, Daemon) {
    let pod = Pod::new();
    let volume = KubeletVolume::new(pod.volume.dir());
    test_kubelet(client.clone(), ns, "prometheus-k8s", volume);
    let key = pod.volume.key_path(KEY);
    tokio::task::spawn_blocking(move || {
        wait_until(WAIT, "the Secret is projected", || key.exists())
    })
    .await
    .unwrap();

    let env = [
        ("POD_NAME", "prometheus-k8s-0"),
        ("SHARD", "0"),
        (
            "RELOADER_CONFIG_FILE",
            &pod.volume.key_path(KEY).display().to_string(),
        ),
        (
            "RELOADER_CONFIG_ENVSUBST_FILE",
            &pod.output().display().to_string(),
        ),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let pairs = borrow(&env);
    let (status, log) = run_promreload(
        &[pairs.clone(), vec![("RELOADER_WATCH_INTERVAL", "0")]].concat(),
        &[],
    );
    assert!(status.success(), "init container: {log}");

    // The helpers below use blocking HTTP clients: run them where blocking is allowed.
    use tokio::task::block_in_place;
    let prometheus = block_in_place(|| Prometheus::start_with(free_port(), &pod.output(), opts));
    let reload_url = prometheus.reload_url();
    let env = [
        pairs,
        vec![
            ("RELOADER_RELOAD_URL", &reload_url),
            ("RELOADER_DELAY_INTERVAL", "0"),
        ],
    ]
    .concat();
    let daemon = Daemon::start(&env, &[]);
    block_in_place(|| daemon.wait_metric_at_least("reloader_last_reload_successful", 1.0, WAIT));
    (pod, prometheus, daemon)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_monitor_to_prometheus_through_the_whole_chain() {
    let _turn = serial().await;
    let cluster = Cluster::start();
    let client = cluster.client().await;
    cluster.install_crds(&client).await;
    let ns = unique("e2e");
    namespace(&client, &ns, &[]).await;
    apply::<PrometheusObject>(
        &client,
        &ns,
        &format!("apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: k8s, namespace: {ns}}}\nspec:\n  serviceMonitorSelector:\n    matchLabels: {{team: e2e}}\n"),
    )
    .await;
    let _reconciler = cluster.reconciler(&[("RECONCILER_NAMESPACE", &ns)]);

    // PromOptions holds a blocking HTTP client: made where blocking is allowed.
    use tokio::task::block_in_place;
    let opts = block_in_place(|| PromOptions {
        exe: k8s_prometheus_dir().join("prometheus"),
        ..PromOptions::default()
    });
    let (_pod, prometheus, daemon) = prometheus_pod(&client, &ns, opts).await;

    let job = format!("job_name: serviceMonitor/{ns}/app/0");
    let sm = format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {{name: app, namespace: {ns}, labels: {{team: e2e}}}}\nspec:\n  selector: {{matchLabels: {{app: app}}}}\n  endpoints: [{{port: web}}]\n"
    );
    let start = Instant::now();
    apply::<ServiceMonitor>(&client, &ns, &sm).await;
    block_in_place(|| {
        wait_until(WAIT, "Prometheus serves the new job", || {
            prometheus.loaded_config().contains(&job)
        })
    });
    let appeared = start.elapsed();
    eprintln!(
        "ServiceMonitor written -> job live in Prometheus: {appeared:?} (no kubelet sync delay)"
    );
    let loaded = block_in_place(|| prometheus.loaded_config());
    assert!(
        loaded.contains("prometheus_replica: prometheus-k8s-0"),
        "{loaded}"
    );
    assert!(
        loaded.contains("regex: 0;|.+;.+"),
        "$(SHARD) expanded: {loaded}"
    );
    assert!(!loaded.contains("$("), "{loaded}");

    let start = Instant::now();
    Api::<ServiceMonitor>::namespaced(client.clone(), &ns)
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "other"}}})),
        )
        .await
        .unwrap();
    block_in_place(|| {
        wait_until(WAIT, "the job disappears", || {
            !prometheus.loaded_config().contains(&job)
        })
    });
    eprintln!(
        "ServiceMonitor unselected -> job gone from Prometheus: {:?}",
        start.elapsed()
    );
    block_in_place(|| {
        assert_eq!(daemon.metric("reloader_reloads_failed_total"), 0.0);
        drop((prometheus, daemon));
    });
}

/// The first global IPv4 address of this machine: the API server refuses loopback addresses
/// in Endpoints, so the scrape target listens on this one.
fn host_address() -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)?;
    Some(field.split('/').next()?.to_string())
}

/// A token for ServiceAccount `name` in `ns`, from the TokenRequest API.
async fn service_account_token(client: &kube::Client, ns: &str, name: &str) -> String {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"expirationSeconds": 3600}})).unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_token_request(name, &Default::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token
}

/// An executable that runs Prometheus as in a Pod with ServiceAccount credentials: in a
/// private mount namespace whose `/var/run/secrets/kubernetes.io/serviceaccount` holds
/// `token` and the API server's CA, so its Kubernetes SD uses the in-cluster config against
/// the test API server (`KUBERNETES_SERVICE_HOST`/`PORT` in the environment). The host's
/// `/run` is untouched.
fn in_cluster_prometheus(dir: &std::path::Path, token: &str, ca: &std::path::Path) -> PathBuf {
    let sa = dir.join("serviceaccount");
    std::fs::create_dir_all(&sa).unwrap();
    std::fs::write(sa.join("token"), token).unwrap();
    std::fs::copy(ca, sa.join("ca.crt")).unwrap();
    let exe = dir.join("prometheus-in-pod");
    let script = format!(
        "#!/bin/sh\nexec unshare --mount --propagation private -- sh -c 'mount -t tmpfs tmpfs /run && mkdir -p /run/secrets/kubernetes.io && cp -r {sa} /run/secrets/kubernetes.io/ && exec {prom} \"$@\"' prometheus \"$@\"\n",
        sa = sa.display(),
        prom = k8s_prometheus_dir().join("prometheus").display()
    );
    std::fs::write(&exe, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    exe
}

/// The health and last error of the target of Service `service`.
fn target_health(prometheus: &Prometheus, service: &str) -> Option<(String, String)> {
    prometheus
        .active_targets()
        .into_iter()
        .find(|t| t["labels"]["service"].as_str() == Some(service))
        .map(|t| {
            (
                t["health"].as_str().unwrap_or_default().to_string(),
                t["lastError"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// The README's walk-through, for real: a "Gerrit" whose metrics need basic auth, the
/// credentials in a Secret, a ServiceMonitor with `basicAuth`, and a Prometheus selecting it.
/// Reconciler -> Secret -> test kubelet -> promreload -> a real Prometheus whose Kubernetes SD
/// (in-cluster credentials of a ServiceAccount with a namespaced Role) discovers the target
/// from the real API server's Endpoints, and scrapes a real HTTP server that checks the
/// credentials (a second Prometheus with `basic_auth_users`). A wrong token in the Secret
/// takes the target down with a 401; the right one brings it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gerrit_walk_through_with_basic_auth_from_a_secret() {
    let Some(address) = host_address() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "no global IPv4 address for the scrape target"
        );
        eprintln!("skipped: no global IPv4 address (the API server refuses loopback Endpoints)");
        return;
    };
    let _turn = serial().await;
    let cluster = Cluster::start();
    let client = cluster.client().await;
    cluster.install_crds(&client).await;
    let ns = unique("gerrit");
    namespace(&client, &ns, &[]).await;
    use tokio::task::block_in_place;

    // Gerrit: an HTTP server that wants `gerrit-bot` and the right token.
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yaml");
    let hash = bcrypt::hash("t0ken-1", 4).unwrap();
    std::fs::write(&web, format!("basic_auth_users:\n  gerrit-bot: {hash}\n")).unwrap();
    let target_config = dir.path().join("gerrit.yaml");
    std::fs::write(&target_config, "global: {}\n").unwrap();
    let gerrit = block_in_place(|| {
        let mut opts = PromOptions {
            host: address.clone(),
            web_config: Some(web),
            ..PromOptions::default()
        };
        opts.basic_auth = Some(("gerrit-bot".into(), "t0ken-1".into()));
        Prometheus::start_with(free_port(), &target_config, opts)
    });
    let objects = format!(
        "
apiVersion: v1
kind: Service
metadata: {{name: gerrit, namespace: {ns}, labels: {{app: gerrit, release: prometheus-operator}}}}
spec:
  ports: [{{name: http, port: 8080, targetPort: {port}}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: gerrit, namespace: {ns}, labels: {{app: gerrit}}}}
subsets:
- addresses: [{{ip: {address}}}]
  ports: [{{name: http, port: {port}}}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: prometheus, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: prometheus-sd, namespace: {ns}}}
rules:
- {{apiGroups: [''], resources: [services, endpoints, pods], verbs: [get, list, watch]}}
- {{apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [get, list, watch]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: prometheus-sd, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: prometheus-sd}}
subjects: [{{kind: ServiceAccount, name: prometheus, namespace: {ns}}}]
---
apiVersion: v1
kind: Secret
metadata: {{name: gerrit, namespace: {ns}}}
stringData: {{user: gerrit-bot, token: t0ken-1}}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {{name: gerrit, namespace: {ns}, labels: {{release: prometheus-operator}}}}
spec:
  selector: {{matchLabels: {{app: gerrit}}}}
  endpoints:
  - port: http
    basicAuth:
      username: {{name: gerrit, key: user}}
      password: {{name: gerrit, key: token}}
---
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata: {{name: k8s, namespace: {ns}}}
spec:
  scrapeInterval: 1s
  serviceMonitorSelector: {{matchLabels: {{release: prometheus-operator}}}}
",
        port = gerrit.port
    );
    kubectl_run(&cluster, &["apply", "-f", "-"], Some(&objects));
    let _reconciler = cluster.reconciler(&[("RECONCILER_NAMESPACE", &ns)]);

    // Prometheus as in its Pod: the in-cluster config of ServiceAccount `prometheus`.
    let kubeconfig: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&cluster.kubeconfig).unwrap()).unwrap();
    let server = kubeconfig["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap();
    let ca = kubeconfig["clusters"][0]["cluster"]["certificate-authority"]
        .as_str()
        .unwrap();
    let api_port = server.rsplit(':').next().unwrap().to_string();
    let token = service_account_token(&client, &ns, "prometheus").await;
    let opts = block_in_place(|| PromOptions {
        exe: in_cluster_prometheus(dir.path(), &token, std::path::Path::new(ca)),
        env: vec![
            ("KUBERNETES_SERVICE_HOST".into(), "127.0.0.1".into()),
            ("KUBERNETES_SERVICE_PORT".into(), api_port),
        ],
        ..PromOptions::default()
    });
    let start = Instant::now();
    let (_pod, prometheus, daemon) = prometheus_pod(&client, &ns, opts).await;
    block_in_place(|| {
        wait_until(WAIT, "the Gerrit target is up", || {
            target_health(&prometheus, "gerrit").is_some_and(|(h, _)| h == "up")
                && prometheus.query_value("up{service=\"gerrit\"}") == Some(1.0)
        })
    });
    eprintln!(
        "objects applied -> Gerrit scraped with its credentials: {:?}",
        start.elapsed()
    );

    // A wrong token: the config carries it, and Gerrit answers 401.
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    let token = |t: &str| Patch::Merge(json!({"stringData": {"token": t}}));
    secrets
        .patch("gerrit", &PatchParams::default(), &token("wrong"))
        .await
        .unwrap();
    block_in_place(|| {
        wait_until(WAIT, "the target is down with a 401", || {
            target_health(&prometheus, "gerrit")
                .is_some_and(|(h, e)| h == "down" && e.contains("401"))
                && prometheus.query_value("up{service=\"gerrit\"}") == Some(0.0)
        })
    });
    // Fixed: back up.
    let start = Instant::now();
    secrets
        .patch("gerrit", &PatchParams::default(), &token("t0ken-1"))
        .await
        .unwrap();
    block_in_place(|| {
        wait_until(WAIT, "the target is up again", || {
            target_health(&prometheus, "gerrit").is_some_and(|(h, _)| h == "up")
        })
    });
    eprintln!(
        "token fixed in the Secret -> target up: {:?}",
        start.elapsed()
    );
    block_in_place(|| {
        assert_eq!(daemon.metric("reloader_reloads_failed_total"), 0.0);
        drop((prometheus, daemon, gerrit));
    });
}
