//! The reconciler binary against a real kube-apiserver and etcd: selection across namespaces,
//! the Secret's content, owner and status, reaction to label changes, invalid objects,
//! and no writes when nothing changed.

use std::time::{Duration, Instant};

use crate::support::cluster::*;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use promreload::reconciler::crd::{Prometheus, ServiceMonitor};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

fn service_monitor(name: &str, ns: &str, labels: &str, endpoint: &str) -> String {
    format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels: {labels}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  endpoints:\n  - {endpoint}\n"
    )
}

async fn jobs(client: &Client, ns: &str) -> Vec<String> {
    secret_config(client, ns, "prometheus-k8s")
        .await
        .map(|(c, _)| job_names(&c))
        .unwrap_or_default()
}

async fn condition(
    client: &Client,
    ns: &str,
) -> Option<(String, String, String, Option<i64>, Option<i64>)> {
    let p = Api::<Prometheus>::namespaced(client.clone(), ns)
        .get("k8s")
        .await
        .ok()?;
    let c = p
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Reconciled")?;
    Some((
        c.status,
        c.reason,
        c.message,
        c.observed_generation,
        p.metadata.generation,
    ))
}

/// Whether a Warning Event `InvalidConfiguration` on object `name` in `ns` has a note
/// containing every one of `needles`.
async fn warned(client: &Client, ns: &str, name: &str, needles: &[&str]) -> bool {
    let events = Api::<Event>::namespaced(client.clone(), ns);
    events.list(&ListParams::default()).await.is_ok_and(|list| {
        list.items.iter().any(|e| {
            e.reason.as_deref() == Some("InvalidConfiguration")
                && e.type_.as_deref() == Some("Warning")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                && e.note
                    .as_deref()
                    .is_some_and(|n| needles.iter().all(|needle| n.contains(needle)))
        })
    })
}

struct Fixture {
    client: Client,
    mon: String,
    team_a: String,
    team_b: String,
    other: String,
    selector: String,
}

/// Namespaces and a Prometheus selecting `release: k8s` ServiceMonitors in namespaces
/// labelled `monitoring: <selector>`.
async fn fixture(cluster: &Cluster) -> Fixture {
    let client = cluster.client().await;
    cluster.install_crds(&client).await;
    let selector = unique("sel");
    let f = Fixture {
        mon: unique("mon"),
        team_a: unique("team-a"),
        team_b: unique("team-b"),
        other: unique("other"),
        client,
        selector,
    };
    namespace(&f.client, &f.mon, &[]).await;
    namespace(&f.client, &f.team_a, &[("monitoring", &f.selector)]).await;
    namespace(&f.client, &f.team_b, &[("monitoring", &f.selector)]).await;
    namespace(&f.client, &f.other, &[]).await;
    let prometheus = format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata:\n  name: k8s\n  namespace: {}\nspec:\n  scrapeInterval: 30s\n  serviceMonitorSelector:\n    matchLabels: {{release: k8s}}\n  serviceMonitorNamespaceSelector:\n    matchLabels: {{monitoring: {}}}\n",
        f.mon, f.selector
    );
    apply::<Prometheus>(&f.client, &f.mon, &prometheus).await;
    for (name, ns, labels) in [
        ("app", &f.team_a, "{release: k8s}"),
        ("db", &f.team_b, "{release: k8s}"),
        ("elsewhere", &f.other, "{release: k8s}"),
        ("unlabelled", &f.team_a, "{}"),
    ] {
        apply::<ServiceMonitor>(
            &f.client,
            ns,
            &service_monitor(name, ns, labels, "port: web"),
        )
        .await;
    }
    f
}

#[tokio::test]
async fn reconciles_selection_changes_and_invalid_objects_against_a_real_api_server() {
    let _turn = serial().await;
    let cluster = Cluster::start();
    let f = fixture(&cluster).await;
    let reconciler = cluster.reconciler(&[]);
    let (client, mon) = (&f.client, f.mon.as_str());

    let expected = vec![
        format!("serviceMonitor/{}/app/0", f.team_a),
        format!("serviceMonitor/{}/db/0", f.team_b),
    ];
    eventually("the Secret lists exactly the selected jobs", || async {
        jobs(client, mon).await == expected
    })
    .await;
    let (config, secret) = secret_config(client, mon, "prometheus-k8s").await.unwrap();
    promtool_check(&config, "the reconciled config");
    assert!(config.contains(&format!("prometheus: {mon}/k8s")));
    let owner = &secret
        .metadata
        .owner_references
        .as_ref()
        .expect("owner reference")[0];
    let prometheus = Api::<Prometheus>::namespaced(client.clone(), mon)
        .get("k8s")
        .await
        .unwrap();
    assert_eq!(
        owner.uid,
        prometheus.uid().unwrap(),
        "owned by its Prometheus"
    );
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(true))
    );
    assert_eq!(
        secret.labels()["app.kubernetes.io/managed-by"],
        "promreload-reconciler"
    );
    eventually("status says 2 selected, 0 rejected", || async {
        condition(client, mon)
            .await
            .is_some_and(|(s, r, m, og, g)| {
                s == "True"
                    && r == "Reconciled"
                    && m == "2 ServiceMonitors selected, 0 rejected"
                    && og == g
            })
    })
    .await;

    // A ServiceMonitor's label change removes its job; time it.
    let sms = Api::<ServiceMonitor>::namespaced(client.clone(), &f.team_b);
    let start = Instant::now();
    sms.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"release": null}}})),
    )
    .await
    .unwrap();
    eventually("the unselected job disappears", || async {
        jobs(client, mon).await == expected[..1]
    })
    .await;
    let removal = start.elapsed();
    eprintln!("ServiceMonitor label change -> Secret updated in {removal:?}");
    assert!(
        removal < Duration::from_secs(5),
        "took {removal:?}: watches, not polling"
    );

    // A Namespace's label change brings its ServiceMonitor in.
    Api::<Namespace>::all(client.clone())
        .patch(
            &f.other,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"monitoring": f.selector}}})),
        )
        .await
        .unwrap();
    let elsewhere = format!("serviceMonitor/{}/elsewhere/0", f.other);
    eventually("the newly selected namespace's job appears", || async {
        jobs(client, mon).await.contains(&elsewhere)
    })
    .await;

    // An invalid ServiceMonitor is left out with a Warning Event; the others stay.
    let bad = service_monitor(
        "bad",
        &f.team_a,
        "{release: k8s}",
        "{port: web, relabelings: [{action: frobnicate}]}",
    );
    apply::<ServiceMonitor>(client, &f.team_a, &bad).await;
    eventually(
        "a Warning Event InvalidConfiguration names the problem",
        || warned(client, &f.team_a, "bad", &["frobnicate"]),
    )
    .await;
    eventually("status counts the rejected one", || async {
        condition(client, mon)
            .await
            .is_some_and(|(_, _, m, _, _)| m == "3 ServiceMonitors selected, 1 rejected")
    })
    .await;
    let now = jobs(client, mon).await;
    assert!(
        now.contains(&expected[0]) && now.contains(&elsewhere),
        "{now:?}"
    );
    assert!(!now.iter().any(|j| j.contains("/bad/")));
    let rejected =
        format!("promreload_reconciler_service_monitors_rejected{{prometheus=\"{mon}/k8s\"}}");
    assert_eq!(reconciler.metric(&rejected).await, 1.0);

    // An invalid Prometheus keeps its last good Secret and says why.
    let before = secret_config(client, mon, "prometheus-k8s")
        .await
        .unwrap()
        .1
        .resource_version();
    Api::<Prometheus>::namespaced(client.clone(), mon)
        .patch(
            "k8s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"scrapeTimeout": "1m"}})),
        )
        .await
        .unwrap();
    eventually("status False InvalidConfiguration", || async {
        condition(client, mon)
            .await
            .is_some_and(|(s, r, m, og, g)| {
                s == "False"
                    && r == "InvalidConfiguration"
                    && m.contains("scrapeTimeout 1m")
                    && og == g
            })
    })
    .await;
    let after = secret_config(client, mon, "prometheus-k8s")
        .await
        .unwrap()
        .1
        .resource_version();
    assert_eq!(before, after, "the last good config stays");
    assert!(
        reconciler
            .metric("promreload_reconciler_failures_total{kind=\"invalid_prometheus\"}")
            .await
            >= 1.0
    );
    let valid = format!("promreload_reconciler_config_valid{{prometheus=\"{mon}/k8s\"}} 0");
    assert!(
        reconciler.metrics_text().await.lines().any(|l| l == valid),
        "the alert's gauge says 0"
    );
    assert_eq!(
        reconciler
            .metric("promreload_reconciler_caches_synced")
            .await,
        1.0
    );
    // Deleted: its per-Prometheus series go at the next reconcile (of another Prometheus).
    Api::<Prometheus>::namespaced(client.clone(), mon)
        .delete("k8s", &Default::default())
        .await
        .unwrap();
    let other = format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: other, namespace: {mon}}}\nspec: {{serviceMonitorSelector: {{}}}}\n"
    );
    apply::<Prometheus>(client, mon, &other).await;
    eventually("the deleted Prometheus's series are gone", || async {
        let text = reconciler.metrics_text().await;
        !text.contains(&format!("prometheus=\"{mon}/k8s\""))
            && text.contains(&format!("prometheus=\"{mon}/other\""))
    })
    .await;
}

#[tokio::test]
async fn fields_it_cannot_render_are_refused_loudly_never_dropped() {
    let _turn = serial().await;
    let cluster = Cluster::start();
    let f = fixture(&cluster).await;
    let _reconciler = cluster.reconciler(&[]);
    let (client, mon) = (&f.client, f.mon.as_str());
    eventually("the first config is written", || async {
        jobs(client, mon).await.len() == 2
    })
    .await;

    // A misspelled field (`bearerTokenSecrets`): refused, never scraped without it.
    let creds = service_monitor(
        "creds",
        &f.team_a,
        "{release: k8s}",
        "{port: web, bearerTokenSecrets: {name: o, key: token}}",
    );
    apply::<ServiceMonitor>(client, &f.team_a, &creds).await;
    eventually("a Warning Event names the unrendered field", || {
        warned(
            client,
            &f.team_a,
            "creds",
            &["spec.endpoints[0].bearerTokenSecrets is not rendered"],
        )
    })
    .await;
    eventually("status counts it as rejected", || async {
        condition(client, mon)
            .await
            .is_some_and(|(_, _, m, _, _)| m == "3 ServiceMonitors selected, 1 rejected")
    })
    .await;
    assert!(
        !jobs(client, mon)
            .await
            .iter()
            .any(|j| j.contains("/creds/")),
        "never a job without its credentials"
    );

    // A Prometheus field that shapes the config and is not rendered: no config at all.
    let before = secret_config(client, mon, "prometheus-k8s")
        .await
        .unwrap()
        .1
        .resource_version();
    let prometheuses = Api::<Prometheus>::namespaced(client.clone(), mon);
    let limit =
        |value: serde_json::Value| Patch::Merge(json!({"spec": {"apiserverConfig": value}}));
    prometheuses
        .patch(
            "k8s",
            &PatchParams::default(),
            &limit(json!({"host": "https://api.example:6443"})),
        )
        .await
        .unwrap();
    eventually("status False naming the field", || async {
        condition(client, mon).await.is_some_and(|(s, r, m, _, _)| {
            s == "False" && r == "InvalidConfiguration" && m.starts_with("spec.apiserverConfig")
        })
    })
    .await;
    let after = secret_config(client, mon, "prometheus-k8s")
        .await
        .unwrap()
        .1
        .resource_version();
    assert_eq!(before, after, "the last good config stays");
    prometheuses
        .patch(
            "k8s",
            &PatchParams::default(),
            &limit(serde_json::Value::Null),
        )
        .await
        .unwrap();
    eventually("reconciled again once the field is gone", || async {
        condition(client, mon)
            .await
            .is_some_and(|(s, _, _, _, _)| s == "True")
    })
    .await;
}

/// The config of `prometheus-k8s` in `ns`, parsed (null before it is written).
async fn config_yaml(client: &Client, ns: &str) -> serde_yaml_ng::Value {
    match secret_config(client, ns, "prometheus-k8s").await {
        Some((text, _)) => serde_yaml_ng::from_str(&text).unwrap(),
        None => serde_yaml_ng::Value::Null,
    }
}

/// The `basic_auth` of the job named `job`, as (username, password).
fn basic_auth(config: &serde_yaml_ng::Value, job: &str) -> Option<(String, String)> {
    let job = config["scrape_configs"]
        .as_sequence()?
        .iter()
        .find(|j| j["job_name"].as_str() == Some(job))?;
    let auth = &job["basic_auth"];
    Some((
        auth["username"].as_str()?.to_string(),
        auth["password"].as_str()?.to_string(),
    ))
}

#[tokio::test]
async fn remote_write_credentials_follow_rotation_and_a_missing_one_keeps_the_last_config() {
    use k8s_openapi::api::core::v1::Secret;
    let _turn = serial().await;
    let cluster = Cluster::start();
    let f = fixture(&cluster).await;
    let reconciler = cluster.reconciler(&[]);
    let (client, mon) = (&f.client, f.mon.as_str());
    let secrets = Api::<Secret>::namespaced(client.clone(), mon);
    let remote = |password: &str| {
        serde_json::from_value::<Secret>(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "remote", "namespace": mon},
            "stringData": {"user": "writer", "password": password}
        }))
        .unwrap()
    };
    secrets
        .create(&Default::default(), &remote("first-password"))
        .await
        .unwrap();
    let prometheuses = Api::<Prometheus>::namespaced(client.clone(), mon);
    let remote_write = json!({"spec": {"remoteWrite": [{
        "url": "https://thanos.example/api/v1/receive",
        "basicAuth": {"username": {"name": "remote", "key": "user"},
                      "password": {"name": "remote", "key": "password"}}
    }]}});
    prometheuses
        .patch("k8s", &PatchParams::default(), &Patch::Merge(remote_write))
        .await
        .unwrap();
    let password = |config: serde_yaml_ng::Value| {
        config["remote_write"][0]["basic_auth"]["password"]
            .as_str()
            .map(str::to_string)
    };
    eventually("the remote write carries the password", || async {
        password(config_yaml(client, mon).await).as_deref() == Some("first-password")
    })
    .await;
    let start = Instant::now();
    secrets
        .replace("remote", &Default::default(), &remote("second-password"))
        .await
        .unwrap();
    eventually("the rotated password is in the config", || async {
        password(config_yaml(client, mon).await).as_deref() == Some("second-password")
    })
    .await;
    eprintln!(
        "remote-write Secret rotation -> config Secret: {:?}",
        start.elapsed()
    );

    // The Secret gone: no config without the password; the last good one stays.
    secrets
        .delete("remote", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the condition names the reference", || async {
        condition(client, mon).await.is_some_and(|(s, r, m, _, _)| {
            s == "False"
                && r == "InvalidConfiguration"
                && m.contains("spec.remoteWrite[0].basicAuth")
        })
    })
    .await;
    assert_eq!(
        password(config_yaml(client, mon).await).as_deref(),
        Some("second-password"),
        "the last good config stays"
    );
    let log = reconciler.process.log();
    assert!(
        !log.contains("first-password") && !log.contains("second-password"),
        "credentials never reach the log"
    );
}

/// kube-prometheus sets every selector: PodMonitors, Probes and ScrapeConfigs are rendered,
/// and a bad PodMonitor or ScrapeConfig costs only itself: a Warning Event names it, the
/// condition counts it, and the rest of the config is written; fixed, it is in; deleted, it
/// is gone.
#[tokio::test]
async fn kube_prometheus_selectors_render_pod_monitors_and_a_bad_object_costs_only_itself() {
    use k8s_openapi::api::core::v1::Secret;
    use promreload::reconciler::crd::PodMonitor;
    let _turn = serial().await;
    let cluster = Cluster::start();
    let f = fixture(&cluster).await;
    let _reconciler = cluster.reconciler(&[]);
    let (client, mon) = (&f.client, f.mon.as_str());
    let prometheuses = Api::<Prometheus>::namespaced(client.clone(), mon);
    // Every object selector `{}`; the namespaces are this test's own (the API server is
    // shared with other tests).
    let selectors = json!({"spec": {
        "podMonitorSelector": {},
        "podMonitorNamespaceSelector": {"matchLabels": {"monitoring": f.selector}},
        "probeSelector": {}, "scrapeConfigSelector": {}
    }});
    prometheuses
        .patch("k8s", &PatchParams::default(), &Patch::Merge(selectors))
        .await
        .unwrap();
    let generation = prometheuses.get("k8s").await.unwrap().metadata.generation;
    eventually("reconciled with the selectors set", || async {
        condition(client, mon)
            .await
            .is_some_and(|(s, _, _, observed, _)| s == "True" && observed == generation)
    })
    .await;
    assert_eq!(
        jobs(client, mon).await.len(),
        2,
        "the ServiceMonitors' jobs"
    );

    // A PodMonitor in another namespace (by `podMonitorNamespaceSelector`), and one whose
    // basic-auth Secret does not exist.
    let pod_monitor = |name: &str, endpoint: &str| {
        format!(
            "apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {{name: {name}, namespace: {}}}\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  podMetricsEndpoints:\n  - {endpoint}\n",
            f.team_a
        )
    };
    apply::<PodMonitor>(
        client,
        &f.team_a,
        &pod_monitor("envoy", "{port: http-envoy-prom, path: /stats/prometheus}"),
    )
    .await;
    apply::<PodMonitor>(
        client,
        &f.team_a,
        &pod_monitor(
            "broken",
            "{port: metrics, basicAuth: {username: {name: creds, key: user}, password: {name: creds, key: password}}}",
        ),
    )
    .await;
    let envoy = format!("podMonitor/{}/envoy/0", f.team_a);
    let broken = format!("podMonitor/{}/broken/0", f.team_a);
    eventually("the good PodMonitor's job is written", || async {
        jobs(client, mon).await.contains(&envoy)
    })
    .await;
    eventually("the bad one is named in a Warning Event", || {
        warned(
            client,
            &f.team_a,
            "broken",
            &[
                "spec.podMetricsEndpoints[0].basicAuth.username",
                "not found",
            ],
        )
    })
    .await;
    eventually("the condition counts both", || async {
        condition(client, mon).await.is_some_and(|(s, _, m, _, _)| {
            s == "True" && m.contains("2 PodMonitors selected, 1 rejected")
        })
    })
    .await;
    // Each says so itself, in its status (one binding per Prometheus).
    let pod_monitors = Api::<PodMonitor>::namespaced(client.clone(), &f.team_a);
    let accepted = |name: &'static str| {
        let pod_monitors = pod_monitors.clone();
        let mon = mon.to_string();
        async move {
            let pm = pod_monitors.get(name).await.ok()?;
            let binding =
                pm.status?.bindings.into_iter().find(|b| {
                    b.namespace == mon && b.name == "k8s" && b.resource == "prometheuses"
                })?;
            let c = binding
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Accepted")?;
            Some((c.status, c.reason, c.message.unwrap_or_default()))
        }
    };
    eventually("the good PodMonitor is Accepted", || async {
        accepted("envoy")
            .await
            .is_some_and(|(s, r, _)| s == "True" && r.is_none())
    })
    .await;
    eventually("the bad one is not, and says why", || async {
        accepted("broken").await.is_some_and(|(s, r, m)| {
            s == "False"
                && r.as_deref() == Some("InvalidConfiguration")
                && m.contains("basicAuth.username")
        })
    })
    .await;
    assert!(!jobs(client, mon).await.contains(&broken));

    // A Probe and a ScrapeConfig: their jobs written. A ScrapeConfig with a discovery kind
    // not rendered: left out alone, named.
    use promreload::reconciler::crd::{Probe, ScrapeConfig};
    apply::<Probe>(
        client,
        mon,
        &format!(
            "apiVersion: monitoring.coreos.com/v1\nkind: Probe\nmetadata: {{name: blackbox, namespace: {mon}}}\nspec:\n  prober: {{url: 'blackbox:9115'}}\n  module: http_2xx\n  targets: {{staticConfig: {{static: ['https://example.com']}}}}\n"
        ),
    )
    .await;
    let scrape_config = |name: &str, spec: &str| {
        format!(
            "apiVersion: monitoring.coreos.com/v1alpha1\nkind: ScrapeConfig\nmetadata: {{name: {name}, namespace: {mon}}}\nspec: {spec}\n"
        )
    };
    apply::<ScrapeConfig>(
        client,
        mon,
        &scrape_config(
            "external",
            "{staticConfigs: [{targets: ['db.example:9187']}], jobName: databases}",
        ),
    )
    .await;
    apply::<ScrapeConfig>(
        client,
        mon,
        &scrape_config("cloud", "{ec2SDConfigs: [{region: eu-west-1}]}"),
    )
    .await;
    let probe_job = format!("probe/{mon}/blackbox");
    let external = format!("scrapeConfig/{mon}/external");
    eventually(
        "the Probe's and the ScrapeConfig's jobs are written",
        || async {
            let jobs = jobs(client, mon).await;
            jobs.contains(&probe_job) && jobs.contains(&external)
        },
    )
    .await;
    eventually("the bad ScrapeConfig is named in a Warning Event", || {
        warned(
            client,
            mon,
            "cloud",
            &["spec.ec2SDConfigs is not rendered by promreload-reconciler"],
        )
    })
    .await;
    eventually(
        "the condition counts it; the config is still written",
        || async {
            condition(client, mon).await.is_some_and(|(s, _, m, _, _)| {
                s == "True" && m.contains("2 ScrapeConfigs selected, 1 rejected")
            })
        },
    )
    .await;
    let written = jobs(client, mon).await;
    assert!(
        written.contains(&envoy) && written.contains(&probe_job),
        "{written:?}"
    );

    // Fixed (the Secret created), the PodMonitor is in; the ScrapeConfigs deleted, they are
    // no longer counted; the good PodMonitor deleted, its job is gone.
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds", "namespace": f.team_a},
        "stringData": {"user": "bot", "password": "pw"}
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), &f.team_a)
        .create(&Default::default(), &secret)
        .await
        .unwrap();
    let scrape_configs = Api::<ScrapeConfig>::namespaced(client.clone(), mon);
    for name in ["external", "cloud"] {
        scrape_configs
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    Api::<PodMonitor>::namespaced(client.clone(), &f.team_a)
        .delete("envoy", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the fixed PodMonitor is Accepted now", || async {
        accepted("broken")
            .await
            .is_some_and(|(s, _, _)| s == "True")
    })
    .await;
    eventually(
        "the fixed PodMonitor is in, the deleted objects gone",
        || async {
            let jobs = jobs(client, mon).await;
            jobs.contains(&broken) && !jobs.contains(&envoy) && !jobs.contains(&external)
        },
    )
    .await;
    eventually("nothing rejected", || async {
        condition(client, mon).await.is_some_and(|(s, _, m, _, _)| {
            s == "True"
                && m.ends_with("1 PodMonitors selected, 0 rejected; 1 Probes selected, 0 rejected")
        })
    })
    .await;
}

#[tokio::test]
async fn credentials_come_from_secrets_and_follow_their_rotation() {
    use k8s_openapi::api::core::v1::Secret;
    let _turn = serial().await;
    let cluster = Cluster::start();
    let f = fixture(&cluster).await;
    let reconciler = cluster.reconciler(&[]);
    let (client, mon) = (&f.client, f.mon.as_str());
    let secrets = Api::<Secret>::namespaced(client.clone(), &f.team_a);
    let gerrit = |token: &str| {
        serde_json::from_value::<Secret>(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "gerrit", "namespace": f.team_a},
            "stringData": {"user": "bot", "token": token}
        }))
        .unwrap()
    };
    secrets
        .create(&Default::default(), &gerrit("first-token"))
        .await
        .unwrap();
    let sm = service_monitor(
        "gerrit",
        &f.team_a,
        "{release: k8s}",
        "{port: web, basicAuth: {username: {name: gerrit, key: user}, password: {name: gerrit, key: token}}}",
    );
    apply::<ServiceMonitor>(client, &f.team_a, &sm).await;
    let job = format!("serviceMonitor/{}/gerrit/0", f.team_a);
    eventually("the job carries the credentials", || async {
        basic_auth(&config_yaml(client, mon).await, &job)
            == Some(("bot".into(), "first-token".into()))
    })
    .await;

    // Rotation: the new token reaches the config Secret through the metadata watch.
    let start = Instant::now();
    secrets
        .replace("gerrit", &Default::default(), &gerrit("second-token"))
        .await
        .unwrap();
    eventually("the rotated token is in the config", || async {
        basic_auth(&config_yaml(client, mon).await, &job)
            == Some(("bot".into(), "second-token".into()))
    })
    .await;
    eprintln!("Secret rotation -> config Secret: {:?}", start.elapsed());

    // A missing key rejects the ServiceMonitor (never a job without its password).
    let mut broken = gerrit("x");
    broken.string_data = Some([("user".to_string(), "bot".to_string())].into());
    // An update in place: one Event, whose note names the missing key.
    secrets
        .replace("gerrit", &Default::default(), &broken)
        .await
        .unwrap();
    eventually("a Warning Event names the reference", || {
        warned(
            client,
            &f.team_a,
            "gerrit",
            &[
                "spec.endpoints[0].basicAuth.password",
                "has no key \"token\"",
            ],
        )
    })
    .await;
    eventually("the job is gone", || async {
        basic_auth(&config_yaml(client, mon).await, &job).is_none()
            && !jobs(client, mon).await.contains(&job)
    })
    .await;
    let log = reconciler.process.log();
    assert!(
        !log.contains("first-token") && !log.contains("second-token"),
        "credentials never reach the log"
    );
}

#[tokio::test]
async fn tls_material_goes_to_the_tls_assets_secret_and_follows_rotation() {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    const CERT: &str = include_str!("../../src/reconciler/testdata/cert.pem");
    const KEY: &str = include_str!("../../src/reconciler/testdata/key.pem");
    const OTHER_CERT: &str = include_str!("../../src/reconciler/testdata/other-cert.pem");
    const OTHER_KEY: &str = include_str!("../../src/reconciler/testdata/other-key.pem");
    let _turn = serial().await;
    let cluster = Cluster::start();
    let f = fixture(&cluster).await;
    let reconciler = cluster.reconciler(&[]);
    let (client, mon, ns) = (&f.client, f.mon.as_str(), f.team_a.as_str());
    let ca = serde_json::from_value::<ConfigMap>(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "ca", "namespace": ns},
        "data": {"ca.crt": CERT}
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .create(&Default::default(), &ca)
        .await
        .unwrap();
    let secrets = Api::<Secret>::namespaced(client.clone(), ns);
    let pair = |cert: &str, key: &str| {
        serde_json::from_value::<Secret>(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "client", "namespace": ns},
            "stringData": {"tls.crt": cert, "tls.key": key}
        }))
        .unwrap()
    };
    secrets
        .create(&Default::default(), &pair(CERT, KEY))
        .await
        .unwrap();
    let sm = service_monitor(
        "mtls",
        ns,
        "{release: k8s}",
        "{port: web, scheme: https, tlsConfig: {ca: {configMap: {name: ca, key: ca.crt}}, cert: {secret: {name: client, key: tls.crt}}, keySecret: {name: client, key: tls.key}}}",
    );
    apply::<ServiceMonitor>(client, ns, &sm).await;
    let (ca_file, cert_file, key_file) = (
        format!("1_{ns}_ca_ca.crt"),
        format!("0_{ns}_client_tls.crt"),
        format!("0_{ns}_client_tls.key"),
    );
    let job = format!("serviceMonitor/{ns}/mtls/0");
    eventually(
        "the job refers to the files and the files are published",
        || async {
            let config = config_yaml(client, mon).await;
            let tls = config["scrape_configs"]
                .as_sequence()
                .and_then(|jobs| jobs.iter().find(|j| j["job_name"].as_str() == Some(&job)))
                .map(|j| j["tls_config"].clone());
            let assets = tls_assets(client, mon).await.unwrap_or_default();
            tls.is_some_and(|t| {
                t["ca_file"].as_str() == Some(&format!("/etc/prometheus/certs/{ca_file}"))
                    && t["key_file"].as_str() == Some(&format!("/etc/prometheus/certs/{key_file}"))
            }) && assets.get(&ca_file).map(String::as_str) == Some(CERT)
                && assets.get(&cert_file).map(String::as_str) == Some(CERT)
                && assets.get(&key_file).map(String::as_str) == Some(KEY)
        },
    )
    .await;

    // Rotation of the client pair reaches the TLS-assets Secret through the metadata watch.
    let start = Instant::now();
    secrets
        .replace("client", &Default::default(), &pair(OTHER_CERT, OTHER_KEY))
        .await
        .unwrap();
    eventually("the rotated pair is published", || async {
        let assets = tls_assets(client, mon).await.unwrap_or_default();
        assets.get(&cert_file).map(String::as_str) == Some(OTHER_CERT)
            && assets.get(&key_file).map(String::as_str) == Some(OTHER_KEY)
    })
    .await;
    eprintln!(
        "Secret rotation -> TLS-assets Secret: {:?}",
        start.elapsed()
    );

    // A certificate that does not match its key rejects the ServiceMonitor: no job, no files.
    secrets
        .replace("client", &Default::default(), &pair(CERT, OTHER_KEY))
        .await
        .unwrap();
    eventually("a Warning Event names the mismatch", || {
        warned(
            client,
            ns,
            "mtls",
            &["spec.endpoints[0].tlsConfig", "do not form a pair"],
        )
    })
    .await;
    eventually("the job and its files are gone", || async {
        !jobs(client, mon).await.contains(&job)
            && tls_assets(client, mon).await.is_some_and(|a| a.is_empty())
    })
    .await;
    let log = reconciler.process.log();
    assert!(!log.contains("PRIVATE KEY"), "keys never reach the log");
}

#[tokio::test]
async fn an_unmanaged_prometheus_keeps_the_users_config() {
    use k8s_openapi::api::core::v1::Secret;
    let _turn = serial().await;
    let cluster = Cluster::start();
    let f = fixture(&cluster).await;
    let (client, mon) = (&f.client, f.mon.as_str());
    // Two Prometheuses without selectors: one whose Secret the user filled, one without.
    let user_config = "global: {scrape_interval: 10s}\nscrape_configs: [{job_name: mine}]\n";
    let secrets = Api::<Secret>::namespaced(client.clone(), mon);
    let users: Secret = serde_json::from_value(json!({
        "metadata": {"name": "prometheus-mine", "namespace": mon},
        "data": {"prometheus.yaml.gz": k8s_openapi::ByteString(promreload::reconciler::secret::gzip(user_config))}
    }))
    .unwrap();
    secrets.create(&Default::default(), &users).await.unwrap();
    for name in ["mine", "fresh"] {
        let yaml = format!(
            "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: {name}, namespace: {mon}}}\nspec: {{replicas: 1}}\n"
        );
        apply::<Prometheus>(client, mon, &yaml).await;
    }
    let before = secrets
        .get("prometheus-mine")
        .await
        .unwrap()
        .resource_version();
    let _reconciler = cluster.reconciler(&[]);
    eventually("an empty Secret is created for the one without", || async {
        secret_config(client, mon, "prometheus-fresh")
            .await
            .is_some_and(|(text, _)| text.is_empty())
    })
    .await;
    let reason = |name: &'static str| async move {
        Api::<Prometheus>::namespaced(client.clone(), mon)
            .get(name)
            .await
            .ok()
            .and_then(|p| p.status)
            .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Reconciled"))
            .map(|c| c.reason)
    };
    eventually("both say ConfigurationUnmanaged", || async {
        reason("mine").await.as_deref() == Some("ConfigurationUnmanaged")
            && reason("fresh").await.as_deref() == Some("ConfigurationUnmanaged")
    })
    .await;
    let after = secrets.get("prometheus-mine").await.unwrap();
    assert_eq!(
        after.resource_version(),
        before,
        "the user's Secret is untouched"
    );
    let (text, _) = secret_config(client, mon, "prometheus-mine").await.unwrap();
    assert_eq!(text, user_config);
}

#[tokio::test]
async fn a_restart_over_unchanged_inputs_writes_nothing() {
    let _turn = serial().await;
    let cluster = Cluster::start();
    let f = fixture(&cluster).await;
    let (client, mon) = (&f.client, f.mon.as_str());
    let first = cluster.reconciler(&[]);
    eventually("the Secret exists", || async {
        jobs(client, mon).await.len() == 2
    })
    .await;
    eventually("the status is set", || async {
        condition(client, mon).await.is_some()
    })
    .await;
    let secret_version = secret_config(client, mon, "prometheus-k8s")
        .await
        .unwrap()
        .1
        .resource_version();
    let prometheus_version = Api::<Prometheus>::namespaced(client.clone(), mon)
        .get("k8s")
        .await
        .unwrap()
        .resource_version();
    drop(first);

    let second = cluster.reconciler(&[]);
    let started = Instant::now();
    while second
        .metric("promreload_reconciler_reconcile_duration_seconds_count")
        .await
        < 1.0
    {
        assert!(
            started.elapsed() < WAIT,
            "no reconcile after restart: {}",
            second.process.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(second.ready().await);
    assert_eq!(
        second
            .metric("promreload_reconciler_secret_writes_total")
            .await,
        0.0
    );
    let secret_after = secret_config(client, mon, "prometheus-k8s")
        .await
        .unwrap()
        .1
        .resource_version();
    let prometheus_after = Api::<Prometheus>::namespaced(client.clone(), mon)
        .get("k8s")
        .await
        .unwrap()
        .resource_version();
    assert_eq!(secret_version, secret_after, "Secret rewritten");
    assert_eq!(prometheus_version, prometheus_after, "status rewritten");
}

/// Not part of the suite (`scripts/bench.sh` runs it): the time from a ServiceMonitor label
/// change (API write) to the Secret holding the new config, over 20 changes.
#[tokio::test]
#[ignore]
async fn secret_update_latency() {
    let _turn = serial().await;
    let cluster = Cluster::start();
    let f = fixture(&cluster).await;
    let (client, mon) = (&f.client, f.mon.as_str());
    let _reconciler = cluster.reconciler(&[]);
    eventually("first Secret", || async {
        jobs(client, mon).await.len() == 2
    })
    .await;
    let sms = Api::<ServiceMonitor>::namespaced(client.clone(), &f.team_b);
    let mut samples = Vec::new();
    for i in 0..20 {
        let release = if i % 2 == 0 {
            serde_json::Value::Null
        } else {
            json!("k8s")
        };
        let want = if i % 2 == 0 { 1 } else { 2 };
        let start = Instant::now();
        sms.patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"release": release}}})),
        )
        .await
        .unwrap();
        // Poll every 5 ms: the 50 ms of `eventually` would dominate the figure.
        while jobs(client, mon).await.len() != want {
            assert!(
                start.elapsed() < WAIT,
                "the change never reached the Secret"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "reconciler | ServiceMonitor change -> Secret updated (real kube-apiserver) | n=20 median={:.1}ms max={:.1}ms",
        samples[10], samples[19]
    );
}

/// The data of rule ConfigMap `prometheus-k8s-rulefiles-0` in `ns`: file name -> content.
async fn rule_files(
    client: &Client,
    ns: &str,
) -> Option<std::collections::BTreeMap<String, String>> {
    use k8s_openapi::api::core::v1::ConfigMap;
    let cm = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt("prometheus-k8s-rulefiles-0")
        .await
        .ok()??;
    Some(cm.data.unwrap_or_default())
}

fn prometheus_rule(name: &str, ns: &str, labels: &str, expr: &str) -> String {
    format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {{name: {name}, namespace: {ns}, labels: {labels}}}\nspec:\n  groups:\n  - name: {name}\n    rules:\n    - alert: {name}\n      expr: '{expr}'\n      annotations: {{summary: '{{{{ $labels.job }}}} is down'}}\n"
    )
}

#[tokio::test]
async fn prometheus_rules_reach_their_config_maps_and_a_bad_one_is_left_out_alone() {
    use promreload::reconciler::crd::PrometheusRule;
    let _turn = serial().await;
    let cluster = Cluster::start();
    let f = fixture(&cluster).await;
    let (client, mon) = (&f.client, f.mon.as_str());
    Api::<Prometheus>::namespaced(client.clone(), mon)
        .patch(
            "k8s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ruleSelector": {"matchLabels": {"role": "alerts"}}}})),
        )
        .await
        .unwrap();
    apply::<PrometheusRule>(
        client,
        mon,
        &prometheus_rule("good", mon, "{role: alerts}", "up == 0"),
    )
    .await;
    apply::<PrometheusRule>(
        client,
        &f.team_a,
        &prometheus_rule("other-namespace", &f.team_a, "{role: alerts}", "up == 0"),
    )
    .await;
    let _reconciler = cluster.reconciler(&[]);
    eventually("the selected rule is in rulefiles-0", || async {
        rule_files(client, mon).await.is_some_and(|files| {
            files.len() == 1 && files.keys().all(|k| k.starts_with(&format!("{mon}-good-")))
        })
    })
    .await;
    // The ConfigMap is written before the config that lists it.
    eventually("the config lists the three mounted rule directories", || async {
        secret_config(client, mon, "prometheus-k8s").await.is_some_and(|(config, _)| {
            config.contains("rule_files:\n- /etc/prometheus/rules/prometheus-k8s-rulefiles-0/*.yaml\n- /etc/prometheus/rules/prometheus-k8s-rulefiles-1/*.yaml\n- /etc/prometheus/rules/prometheus-k8s-rulefiles-2/*.yaml\n")
        })
    })
    .await;

    // A PrometheusRule Prometheus would refuse is left out with a Warning Event naming the
    // problem; the good one stays.
    apply::<PrometheusRule>(
        client,
        mon,
        &prometheus_rule("bad", mon, "{role: alerts}", "sum(rate(x[5m])"),
    )
    .await;
    eventually("the bad rule is reported", || {
        warned(client, mon, "bad", &["could not parse expression", "bad"])
    })
    .await;
    eventually("the condition counts it", || async {
        condition(client, mon)
            .await
            .is_some_and(|c| c.2.contains("2 PrometheusRules selected, 1 rejected"))
    })
    .await;
    let files = rule_files(client, mon).await.unwrap();
    assert_eq!(files.len(), 1, "{files:?}");

    // A change reaches the ConfigMap (timed: write -> ConfigMap updated).
    let start = Instant::now();
    apply::<PrometheusRule>(
        client,
        mon,
        &prometheus_rule("good", mon, "{role: alerts}", "up{job=\"changed\"} == 0"),
    )
    .await;
    eventually("the change is in rulefiles-0", || async {
        rule_files(client, mon)
            .await
            .is_some_and(|files| files.values().any(|v| v.contains("changed")))
    })
    .await;
    eprintln!(
        "PrometheusRule write -> rule ConfigMap updated: {:?}",
        start.elapsed()
    );

    // Fixing the bad one brings it in; deleting the good one takes it out.
    apply::<PrometheusRule>(
        client,
        mon,
        &prometheus_rule("bad", mon, "{role: alerts}", "sum(rate(x[5m]))"),
    )
    .await;
    Api::<PrometheusRule>::namespaced(client.clone(), mon)
        .delete("good", &DeleteParams::default())
        .await
        .unwrap();
    eventually("only the fixed rule is left", || async {
        rule_files(client, mon).await.is_some_and(|files| {
            files.len() == 1 && files.keys().all(|k| k.starts_with(&format!("{mon}-bad-")))
        })
    })
    .await;
}

/// A cluster without the PrometheusRule CRD: a Prometheus without a `ruleSelector` is
/// reconciled as before; one with a `ruleSelector` is refused, naming why, and keeps its last
/// config; once the CRD is installed, it is rendered.
#[tokio::test]
async fn without_the_prometheus_rule_crd_only_a_prometheus_selecting_rules_waits() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let _turn = serial().await;
    let cluster = Cluster::start();
    let f = fixture(&cluster).await;
    let (client, mon) = (&f.client, f.mon.as_str());
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = "prometheusrules.monitoring.coreos.com";
    crds.delete(name, &DeleteParams::default()).await.unwrap();
    eventually("the CRD is gone", || async {
        crds.get_opt(name).await.is_ok_and(|c| c.is_none())
    })
    .await;
    let _reconciler = cluster.reconciler(&[]);
    eventually("reconciled without the CRD", || async {
        condition(client, mon).await.is_some_and(|c| c.0 == "True")
    })
    .await;
    let before = jobs(client, mon).await;
    assert_eq!(before.len(), 2, "{before:?}");

    Api::<Prometheus>::namespaced(client.clone(), mon)
        .patch(
            "k8s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ruleSelector": {}}})),
        )
        .await
        .unwrap();
    eventually("refused, saying why", || async {
        condition(client, mon)
            .await
            .is_some_and(|c| c.0 == "False" && c.2.contains("PrometheusRules cannot be listed"))
    })
    .await;
    let (config, _) = secret_config(client, mon, "prometheus-k8s").await.unwrap();
    assert!(!config.contains("rule_files"), "the last good config stays");

    // The CRD installed: the list succeeds at the watch's next retry (backoff up to 30 s).
    cluster.install_crds(client).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rendered = secret_config(client, mon, "prometheus-k8s")
            .await
            .is_some_and(|(c, _)| c.contains("rule_files"));
        if rendered && condition(client, mon).await.is_some_and(|c| c.0 == "True") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not rendered after the CRD came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
