//! The reconcile function in-process, against [`FakeApi`]: the order of the writes, what an
//! unchanged Prometheus costs, and what happens when a write, a read or an Event fails, which
//! a real API server does not do on demand. The controller's watches are not run: the tests
//! fill its caches themselves.

use std::io::Read;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::store::Writer;

use super::watch::{ListFailure, resynced};
use super::*;
use crate::reconciler::fake_api::FakeApi;
use clap::Parser;
use kube::runtime::reflector;

use crate::reconciler::settings::Cli;

const PROMETHEUS: &str = "/apis/monitoring.coreos.com/v1/namespaces/monitoring/prometheuses/k8s";
const CONFIG: &str = "/api/v1/namespaces/monitoring/secrets/prometheus-k8s";
const TLS_ASSETS: &str = "/api/v1/namespaces/monitoring/secrets/prometheus-k8s-tls-assets-0";
const RULE_FILES: &str = "/api/v1/namespaces/monitoring/configmaps/prometheus-k8s-rulefiles-0";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/monitoring/events";
const CREDENTIALS: &str = "/api/v1/namespaces/monitoring/secrets/creds";

fn object<K: serde::de::DeserializeOwned>(yaml: &str) -> K {
    serde_yaml_ng::from_str(yaml).expect("a test object parses")
}

fn prometheus(spec: &str) -> Prometheus {
    object(&format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\n\
         metadata: {{name: k8s, namespace: monitoring, uid: uid-1, generation: 1}}\nspec: {spec}"
    ))
}

fn service_monitor(endpoint: &str) -> ServiceMonitor {
    object(&format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\n\
         metadata: {{name: app, namespace: monitoring, uid: uid-2}}\n\
         spec: {{selector: {{matchLabels: {{app: app}}}}, endpoints: [{endpoint}]}}"
    ))
}

fn prometheus_rule() -> PrometheusRule {
    big_rule("alerts", 0)
}

/// A PrometheusRule whose alert carries a description of `bytes` bytes.
fn big_rule(name: &str, bytes: usize) -> PrometheusRule {
    object(&format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\n\
         metadata: {{name: {name}, namespace: monitoring, uid: uid-{name}}}\n\
         spec: {{groups: [{{name: g, rules: [{{alert: Down, expr: up == 0, \
         annotations: {{description: '{}'}}}}]}}]}}",
        "x".repeat(bytes)
    ))
}

/// Fills `writer` as a first list would, which makes its store ready.
fn listed<K>(writer: &mut Writer<K>, objects: impl IntoIterator<Item = K>)
where
    K: Resource<DynamicType = ()> + Clone,
{
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(object));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
}

/// The controller's shared state over a fake API, with the caches as the tests fill them.
struct Fixture {
    api: FakeApi,
    ctx: Arc<Context>,
    prometheus_rules: Writer<PrometheusRule>,
    pod_monitors: Writer<PodMonitor>,
    probes: Writer<Probe>,
    /// Behind a lock so `no_other_kinds` can list them from `&self`.
    scrape_configs: std::sync::Mutex<Writer<ScrapeConfig>>,
}

impl Fixture {
    /// `prometheus` stored in the API and the cache, `service_monitors` and the `monitoring`
    /// Namespace listed; PrometheusRules and the other kinds not listed yet.
    fn new(prometheus: &Prometheus, service_monitors: Vec<ServiceMonitor>) -> Self {
        Self::with_args(prometheus, service_monitors, &[])
    }

    /// As [`Fixture::new`], with the reconciler's flags `args`.
    fn with_args(
        prometheus: &Prometheus,
        service_monitors: Vec<ServiceMonitor>,
        args: &[&str],
    ) -> Self {
        let api = FakeApi::new();
        api.insert(PROMETHEUS, prometheus);
        let client = api.client();
        let (service_monitor_store, mut writer) = reflector::store();
        listed(&mut writer, service_monitors);
        let (namespaces, mut writer) = reflector::store();
        listed(
            &mut writer,
            [object::<Namespace>("metadata: {name: monitoring}")],
        );
        let (prometheus_rule_store, prometheus_rules) = reflector::store();
        let (pod_monitor_store, pod_monitors) = reflector::store();
        let (probe_store, probes) = reflector::store();
        let (scrape_config_store, scrape_configs) = reflector::store();
        let (prometheus_store, mut prometheuses) = reflector::store();
        listed(&mut prometheuses, [prometheus.clone()]);
        let argv = std::iter::once("promreload-reconciler").chain(args.iter().copied());
        let Cli { run, .. } = Cli::try_parse_from(argv).expect("the flags parse");
        let ctx = Arc::new(Context {
            recorder: Recorder::new(client.clone(), "promreload-reconciler".into()),
            client,
            config: run.config(),
            metrics: ReconcilerMetrics::default(),
            service_monitors: service_monitor_store,
            pod_monitors: pod_monitor_store,
            pod_monitors_error: ListError::default(),
            probes: probe_store,
            probes_error: ListError::default(),
            scrape_configs: scrape_config_store,
            scrape_configs_error: ListError::default(),
            namespaces,
            prometheus_rules: prometheus_rule_store,
            rules_error: ListError::default(),
            warned: Mutex::new(HashMap::new()),
            assets: Arc::default(),
            tls_shards: Mutex::new(HashMap::new()),
            rule_config_maps: Mutex::new(HashMap::new()),
            bindings: bindings::Written::default(),
            prometheuses: prometheus_store,
        });
        Self {
            api,
            ctx,
            prometheus_rules,
            pod_monitors,
            probes,
            scrape_configs: std::sync::Mutex::new(scrape_configs),
        }
    }

    /// Changes the Prometheus as the API holds it, as `kubectl edit` would.
    fn edit(&self, change: impl FnOnce(&mut Prometheus)) {
        let mut stored: Prometheus = self.api.get(PROMETHEUS).expect("the Prometheus is stored");
        change(&mut stored);
        self.api.insert(PROMETHEUS, &stored);
    }

    /// Reconciles the Prometheus as the API holds it now (with the status last written).
    async fn reconcile(&self) -> Result<Action, Error> {
        let stored: Prometheus = self.api.get(PROMETHEUS).expect("the Prometheus is stored");
        reconcile_one(Arc::new(stored), self.ctx.clone()).await
    }

    /// ScrapeConfigs, listed and empty.
    async fn no_other_kinds(&self) {
        self.list_scrape_configs([]);
    }

    /// ScrapeConfigs, listed.
    fn list_scrape_configs(&self, objects: impl IntoIterator<Item = ScrapeConfig>) {
        let mut writer = self.scrape_configs.lock().expect("not poisoned");
        listed(&mut writer, objects);
    }

    /// The `Reconciled` condition as the API holds it: status, reason, message.
    fn condition(&self) -> Option<(String, String, String)> {
        let stored: Prometheus = self.api.get(PROMETHEUS)?;
        let status = stored.status?;
        let c = status.conditions.iter().find(|c| c.type_ == "Reconciled")?;
        Some((c.status.clone(), c.reason.clone(), c.message.clone()))
    }

    /// The message of a `False` condition with `reason` (which it asserts).
    fn refused(&self, reason: &str) -> String {
        let (status, got, message) = self.condition().expect("a condition");
        assert_eq!(
            (status.as_str(), got.as_str()),
            ("False", reason),
            "{message}"
        );
        message
    }

    /// The config in the config Secret, gunzipped.
    fn config(&self) -> Option<String> {
        let secret: Secret = self.api.get(CONFIG)?;
        let gz = secret.data?.remove("prometheus.yaml.gz")?;
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gz.0[..])
            .read_to_string(&mut out)
            .expect("the config is gzip");
        Some(out)
    }

    /// The Events published so far: (object, reason, note).
    fn events(&self) -> Vec<(String, String, String)> {
        self.api
            .paths(&format!("{EVENTS}/"))
            .iter()
            .filter_map(|path| self.api.get::<serde_json::Value>(path))
            .map(|e| {
                let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
                (
                    format!(
                        "{}/{}",
                        text(&e["regarding"]["kind"]),
                        text(&e["regarding"]["name"])
                    ),
                    text(&e["reason"]),
                    text(&e["note"]),
                )
            })
            .collect()
    }

    /// The methods of the requests that published Events, in order.
    fn published(&self) -> Vec<String> {
        self.api
            .sent()
            .into_iter()
            .filter(|s| s.path.starts_with(EVENTS))
            .map(|s| s.method)
            .collect()
    }

    /// How many GETs of `path` were sent.
    fn reads(&self, path: &str) -> usize {
        self.api
            .sent()
            .iter()
            .filter(|s| s.method == "GET" && s.path == path)
            .count()
    }
}

fn requeue_after(d: Duration) -> Action {
    Action::requeue(d)
}

#[tokio::test]
async fn the_files_are_written_before_the_config_and_an_unchanged_prometheus_writes_nothing() {
    let p = prometheus("{serviceMonitorSelector: {}, ruleSelector: {}}");
    let mut f = Fixture::new(&p, vec![service_monitor("{port: web}")]);
    listed(&mut f.prometheus_rules, [prometheus_rule()]);
    f.no_other_kinds().await;

    let action = f.reconcile().await.expect("reconciled");
    assert_eq!(action, requeue_after(f.ctx.config.resync_interval));
    assert_eq!(
        f.api.writes(),
        [
            format!("PATCH {TLS_ASSETS}"),
            // No shard count known yet: the first surplus shard is looked for (absent).
            "DELETE /api/v1/namespaces/monitoring/secrets/prometheus-k8s-tls-assets-1".into(),
            format!("PATCH {RULE_FILES}"),
            "DELETE /api/v1/namespaces/monitoring/configmaps/prometheus-k8s-rulefiles-1".into(),
            format!("PATCH {CONFIG}"),
            "PATCH /apis/monitoring.coreos.com/v1/namespaces/monitoring/servicemonitors/app/status"
                .into(),
            format!("PATCH {PROMETHEUS}/status"),
        ],
        "the TLS assets and rule files first, so the config never names a missing file; \
         then the ServiceMonitor's Accepted condition"
    );
    let config = f.config().expect("the config Secret is written");
    assert!(
        config.contains("job_name: serviceMonitor/monitoring/app/0"),
        "{config}"
    );
    assert!(
        config.contains("/etc/prometheus/rules/prometheus-k8s-rulefiles-0/"),
        "{config}"
    );
    assert_eq!(
        f.condition(),
        Some((
            "True".into(),
            "Reconciled".into(),
            "1 ServiceMonitors selected, 0 rejected; 1 PrometheusRules selected, 0 rejected".into()
        ))
    );
    assert_eq!(f.ctx.metrics.secret_writes.get(), 3);

    f.api.clear_sent();
    f.reconcile().await.expect("reconciled again");
    assert_eq!(
        f.api.writes(),
        Vec::<String>::new(),
        "unchanged: reads only"
    );
    assert_eq!(f.ctx.metrics.secret_writes.get(), 3);
}

/// `operator.prometheus.io/controller-id` gives each Prometheus to one controller, as with
/// prometheus-operator: by default the reconciler handles those without the annotation; with
/// `--controller-id`, those annotated with that id. Another controller's Prometheus is not
/// touched at all, and one given back is reconciled.
#[tokio::test]
async fn a_prometheus_of_another_controller_is_not_touched() {
    let annotated = |id: &str| {
        let mut p = prometheus("{serviceMonitorSelector: {}}");
        p.metadata.annotations = Some(
            [(
                "operator.prometheus.io/controller-id".to_string(),
                id.to_string(),
            )]
            .into(),
        );
        p
    };
    for (args, theirs, ours) in [
        (
            &[][..],
            annotated("operator"),
            prometheus("{serviceMonitorSelector: {}}"),
        ),
        (
            &["--controller-id=promreload"][..],
            prometheus("{serviceMonitorSelector: {}}"),
            annotated("promreload"),
        ),
    ] {
        let f = Fixture::with_args(&theirs, vec![service_monitor("{port: web}")], args);
        f.no_other_kinds().await;
        let action = f.reconcile().await.expect("not a failure");
        assert_eq!(action, Action::await_change(), "{args:?}");
        assert_eq!(f.api.writes(), Vec::<String>::new(), "{args:?}: untouched");
        assert_eq!(f.config(), None);

        f.edit(|p| p.metadata.annotations = ours.metadata.annotations.clone());
        f.reconcile().await.expect("reconciled");
        assert!(f.config().is_some(), "{args:?}: ours now");
    }
}

/// `paused: true` touches nothing generated (as the operator): a changed ServiceMonitor does
/// not reach the config, and no Secret or ConfigMap is written; the condition says why.
/// Unpaused, the change is written.
#[tokio::test]
async fn a_paused_prometheus_is_left_as_it_is() {
    let p = prometheus("{serviceMonitorSelector: {}}");
    let f = Fixture::new(&p, vec![service_monitor("{port: web}")]);
    f.no_other_kinds().await;
    f.reconcile().await.expect("reconciled");
    let before = f.config().expect("a config");

    f.edit(|p| p.spec.paused = Some(true));
    f.edit(|p| p.spec.scrape_interval = Some("10s".into()));
    f.api.clear_sent();
    f.reconcile().await.expect("paused is not a failure");
    assert_eq!(
        f.api.writes(),
        [format!("PATCH {PROMETHEUS}/status")],
        "the condition only"
    );
    assert_eq!(f.config().as_deref(), Some(before.as_str()));
    let message = f.refused("Paused");
    assert!(message.contains("spec.paused is true"), "{message}");
    f.api.clear_sent();
    f.reconcile().await.expect("paused again");
    assert_eq!(f.api.writes(), Vec::<String>::new(), "said once");

    f.edit(|p| p.spec.paused = None);
    f.reconcile().await.expect("reconciled");
    let after = f.config().expect("a config");
    assert!(after.contains("scrape_interval: 10s"), "{after}");
}

#[tokio::test]
async fn a_refused_write_fails_the_reconcile_and_the_condition_says_so() {
    let p = prometheus("{serviceMonitorSelector: {}}");
    let f = Fixture::new(&p, vec![service_monitor("{port: web}")]);
    f.no_other_kinds().await;
    f.api.fail("PATCH", CONFIG, 403, "Forbidden");

    let error = f.reconcile().await.expect_err("the write is refused");
    match &error {
        Error::Kube(kube::Error::Api(status)) => assert_eq!(status.code, 403),
        other => panic!("expected the 403, got {other}"),
    }
    assert_eq!(f.config(), None);
    let message = f.refused("ReconciliationFailed");
    assert!(message.contains("Forbidden"), "{message}");
    let action = error_policy(Arc::new(p), &error, f.ctx.clone());
    assert_eq!(action, requeue_after(Duration::from_secs(5)));
    assert!(
        f.ctx
            .metrics
            .encode()
            .contains("promreload_reconciler_failures_total{kind=\"kube\"} 1"),
        "{}",
        f.ctx.metrics.encode()
    );

    // Failing on, for another reason: the condition is not rewritten at every attempt (each
    // write would wake the controller again at once).
    f.api.heal(CONFIG);
    f.api.fail("PATCH", CONFIG, 500, "InternalError");
    f.api.clear_sent();
    f.reconcile().await.expect_err("still failing");
    assert!(
        !f.api
            .writes()
            .contains(&format!("PATCH {PROMETHEUS}/status")),
        "{:?}",
        f.api.writes()
    );
    assert!(f.refused("ReconciliationFailed").contains("Forbidden"));

    f.api.heal(CONFIG);
    f.reconcile().await.expect("the retry succeeds");
    assert!(f.config().is_some());
    assert_eq!(f.condition().map(|c| c.1), Some("Reconciled".to_string()));
}

#[tokio::test]
async fn an_invalid_prometheus_keeps_its_last_good_config_and_is_reported_once() {
    let p = prometheus("{serviceMonitorSelector: {}, bodySizeLimit: lots}");
    let f = Fixture::new(&p, vec![service_monitor("{port: web}")]);
    f.no_other_kinds().await;
    let last_good = secret::desired(&p, "global: {}\n");
    f.api.insert(CONFIG, &last_good);

    let action = f.reconcile().await.expect("a refusal is not a failure");
    assert_eq!(action, requeue_after(f.ctx.config.resync_interval));
    assert_eq!(f.config().as_deref(), Some("global: {}\n"), "kept");
    let message = f.refused("InvalidConfiguration");
    assert!(
        message.contains("spec.bodySizeLimit: \"lots\""),
        "{message}"
    );
    let events = f.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].0.as_str(), events[0].1.as_str()),
        ("Prometheus/k8s", "InvalidConfiguration")
    );
    assert_eq!(events[0].2, message);
    assert!(
        f.ctx
            .metrics
            .encode()
            .contains("promreload_reconciler_config_valid{prometheus=\"monitoring/k8s\"} 0"),
        "{}",
        f.ctx.metrics.encode()
    );

    f.api.clear_sent();
    f.reconcile().await.expect("reconciled again");
    assert_eq!(
        f.api.writes(),
        Vec::<String>::new(),
        "the same reason: no second Event, no condition write"
    );
}

#[tokio::test]
async fn an_event_that_cannot_be_published_is_published_at_the_next_reconcile() {
    let p = prometheus("{serviceMonitorSelector: {}, bodySizeLimit: lots}");
    let f = Fixture::new(&p, vec![]);
    f.no_other_kinds().await;
    f.api.fail_once("POST", EVENTS, 500, "InternalError");

    f.reconcile().await.expect("reconciled");
    assert_eq!(f.events(), vec![]);
    f.reconcile().await.expect("reconciled again");
    assert_eq!(f.events().len(), 1, "tried again, once");
    f.reconcile().await.expect("and again");
    assert_eq!(f.events().len(), 1);
    let posts = f.api.sent().iter().filter(|s| s.method == "POST").count();
    assert_eq!(posts, 2);
}

#[tokio::test]
async fn a_rule_selector_waits_for_the_rules_and_is_refused_while_they_cannot_be_listed() {
    let p = prometheus("{serviceMonitorSelector: {}, ruleSelector: {}}");
    let f = Fixture::new(&p, vec![]);
    f.no_other_kinds().await;

    let action = f.reconcile().await.expect("waiting is not a failure");
    assert_eq!(action, requeue_after(Duration::from_secs(1)));
    assert_eq!(f.api.sent().len(), 0, "no request at all");

    *f.ctx.rules_error.lock().unwrap() = Some(ListFailure {
        message: "prometheusrules is forbidden".into(),
        not_installed: false,
    });
    f.reconcile().await.expect("a refusal is not a failure");
    let message = f.refused("InvalidConfiguration");
    assert!(
        message.contains("PrometheusRules cannot be listed (prometheusrules is forbidden)"),
        "{message}"
    );
    assert_eq!(f.config(), None, "nothing written");
}

#[tokio::test]
async fn a_prometheus_selecting_a_kind_not_yet_listed_waits() {
    let p = prometheus(
        "{serviceMonitorSelector: {}, podMonitorSelector: {}, scrapeConfigSelector: {}}",
    );
    let mut f = Fixture::new(&p, vec![]);
    let action = f.reconcile().await.expect("waiting is not a failure");
    assert_eq!(action, requeue_after(Duration::from_secs(1)));
    assert_eq!(f.api.writes(), Vec::<String>::new());

    // PodMonitors listed; ScrapeConfigs not yet: still waiting.
    listed(&mut f.pod_monitors, []);
    let action = f.reconcile().await.expect("waiting is not a failure");
    assert_eq!(action, requeue_after(Duration::from_secs(1)));
    assert_eq!(f.api.writes(), Vec::<String>::new());

    f.no_other_kinds().await;
    f.reconcile().await.expect("reconciled");
    assert!(f.config().is_some());
}

const BASIC_AUTH: &str = "{port: web, basicAuth: {username: {name: creds, key: user}, \
                          password: {name: creds, key: password}}}";

/// A Prometheus selecting one ServiceMonitor that takes its basic-auth credentials from the
/// Secret `creds`, which exists.
fn with_credentials() -> Fixture {
    let p = prometheus("{serviceMonitorSelector: {}}");
    let f = Fixture::new(&p, vec![service_monitor(BASIC_AUTH)]);
    let creds: Secret = object(
        "metadata: {name: creds, namespace: monitoring}\ndata: {user: Ym90, password: czNjcjN0}",
    );
    f.api.insert(CREDENTIALS, &creds);
    f
}

#[tokio::test]
async fn a_referenced_secret_that_cannot_be_read_for_now_fails_the_reconcile_and_keeps_the_config()
{
    let f = with_credentials();
    f.no_other_kinds().await;
    let p: Prometheus = f.api.get(PROMETHEUS).unwrap();
    f.api.insert(
        CONFIG,
        secret::desired(&p, "scrape_configs: [{job_name: before}]\n"),
    );
    f.api
        .fail_once("GET", CREDENTIALS, 503, "ServiceUnavailable");

    match f.reconcile().await {
        Err(error @ Error::Read { .. }) => assert!(
            error
                .to_string()
                .starts_with("cannot read Secret monitoring/creds: "),
            "{error}"
        ),
        other => panic!("expected a read error, got {other:?}"),
    }
    assert_eq!(
        f.config().as_deref(),
        Some("scrape_configs: [{job_name: before}]\n"),
        "the ServiceMonitor's jobs are not dropped over a passing error"
    );
    let message = f.refused("ReconciliationFailed");
    assert!(
        message.starts_with("cannot read Secret monitoring/creds: "),
        "{message}"
    );

    f.reconcile().await.expect("the retry reads it");
    assert_eq!(f.reads(CREDENTIALS), 2, "a passing failure is not cached");
    let (_, _, message) = f.condition().expect("a condition");
    assert_eq!(message, "1 ServiceMonitors selected, 0 rejected");
    let config = f.config().expect("written");
    assert!(config.contains("password: s3cr3t"), "{config}");
    f.reconcile().await.expect("and again");
    assert_eq!(f.reads(CREDENTIALS), 2, "a Secret read is cached");
}

#[tokio::test]
async fn a_forbidden_secret_rejects_its_service_monitor_and_is_read_again_next_time() {
    let f = with_credentials();
    f.no_other_kinds().await;
    f.api.fail_once("GET", CREDENTIALS, 403, "Forbidden");

    f.reconcile().await.expect("a rejection is not a failure");
    let (_, _, message) = f.condition().expect("a condition");
    assert_eq!(message, "1 ServiceMonitors selected, 1 rejected");
    let events = f.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "ServiceMonitor/app");
    assert!(
        events[0]
            .2
            .starts_with("left out of Prometheus monitoring/k8s: ")
            && events[0]
                .2
                .contains("Secret monitoring/creds: forbidden: GET /api/v1/namespaces/monitoring/secrets/creds: Forbidden"),
        "{}",
        events[0].2
    );

    f.reconcile().await.expect("reconciled again");
    assert_eq!(
        f.reads(CREDENTIALS),
        2,
        "RBAC may have been fixed meanwhile"
    );
    let (_, _, message) = f.condition().expect("a condition");
    assert_eq!(message, "1 ServiceMonitors selected, 0 rejected");
}

#[tokio::test]
async fn a_missing_secret_rejects_its_service_monitor_and_is_not_read_again() {
    let p = prometheus("{serviceMonitorSelector: {}}");
    let f = Fixture::new(&p, vec![service_monitor(BASIC_AUTH)]);
    f.no_other_kinds().await;
    f.reconcile().await.expect("reconciled");
    f.reconcile().await.expect("reconciled again");
    assert_eq!(
        f.reads(CREDENTIALS),
        1,
        "its absence is cached: the metadata watch tells when it appears"
    );
    let events = f.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "ServiceMonitor/app");
    assert!(
        events[0].2.contains("Secret monitoring/creds: not found"),
        "{}",
        events[0].2
    );
}

#[tokio::test]
async fn an_unmanaged_prometheus_gets_an_empty_secret_once_and_the_users_is_never_touched() {
    let p = prometheus("{}");
    let f = Fixture::new(&p, vec![service_monitor("{port: web}")]);
    f.reconcile().await.expect("reconciled");
    assert!(
        f.api
            .writes()
            .contains(&"POST /api/v1/namespaces/monitoring/secrets".to_string()),
        "{:?}",
        f.api.writes()
    );
    assert_eq!(f.config().as_deref(), Some(""));
    assert_eq!(
        f.condition().map(|c| c.1),
        Some("ConfigurationUnmanaged".to_string())
    );
    f.api.clear_sent();
    f.reconcile().await.expect("reconciled again");
    assert_eq!(f.api.writes(), Vec::<String>::new(), "once");

    let g = Fixture::new(&p, vec![service_monitor("{port: web}")]);
    let users = secret::desired(&p, "scrape_configs: [{job_name: mine}]\n");
    g.api.insert(CONFIG, &users);
    g.reconcile().await.expect("reconciled");
    assert!(
        g.api
            .writes()
            .iter()
            .all(|w| *w != format!("PATCH {CONFIG}")
                && w != "POST /api/v1/namespaces/monitoring/secrets"),
        "{:?}",
        g.api.writes()
    );
    assert_eq!(
        g.config().as_deref(),
        Some("scrape_configs: [{job_name: mine}]\n")
    );
}

#[tokio::test]
async fn rule_files_moving_to_fewer_config_maps_are_written_before_the_surplus_is_deleted() {
    let p = prometheus("{serviceMonitorSelector: {}, ruleSelector: {}}");
    let mut f = Fixture::new(&p, vec![]);
    f.no_other_kinds().await;
    // Two rules of 300 kB: one ConfigMap each (512 kB at most).
    let (a, b) = (big_rule("a", 300_000), big_rule("b", 300_000));
    listed(&mut f.prometheus_rules, [a.clone(), b]);
    f.reconcile().await.expect("reconciled");
    let second = "/api/v1/namespaces/monitoring/configmaps/prometheus-k8s-rulefiles-1";
    assert!(
        f.api.writes().contains(&format!("PATCH {second}")),
        "{:?}",
        f.api.writes()
    );

    f.api.clear_sent();
    f.prometheus_rules
        .apply_watcher_event(&watcher::Event::Delete(a));
    f.reconcile().await.expect("reconciled again");
    let writes = f.api.writes();
    let moved = writes
        .iter()
        .position(|w| *w == format!("PATCH {RULE_FILES}"));
    let deleted = writes.iter().position(|w| *w == format!("DELETE {second}"));
    assert!(
        matches!((moved, deleted), (Some(m), Some(d)) if m < d),
        "rule b moves into -0 before -1 goes, so it is never missing: {writes:?}"
    );
    assert_eq!(f.api.paths(second), Vec::<String>::new());
    let files: ConfigMap = f.api.get(RULE_FILES).expect("-0 is there");
    let names: Vec<&String> = files.data.as_ref().unwrap().keys().collect();
    assert_eq!(names, ["monitoring-b-uid-b.yaml"]);
}

#[tokio::test]
async fn a_relapse_and_a_recreated_prometheus_are_reported_again() {
    let invalid = prometheus("{serviceMonitorSelector: {}, bodySizeLimit: lots}");
    let f = Fixture::new(&invalid, vec![]);
    f.no_other_kinds().await;
    f.reconcile().await.expect("reconciled");
    assert_eq!(f.events().len(), 1);

    f.edit(|p| p.spec.body_size_limit = None);
    f.reconcile().await.expect("valid again");
    f.edit(|p| p.spec.body_size_limit = Some("lots".into()));
    f.reconcile().await.expect("invalid again");
    assert_eq!(
        f.published(),
        ["POST", "PATCH"],
        "the relapse is reported (as the same Event seen twice, as the recorder counts it)"
    );
    f.reconcile().await.expect("unchanged");
    assert_eq!(f.published().len(), 2, "once per relapse");

    // Deleted and created again under the same name: a new object, with its own Event.
    f.edit(|p| {
        p.metadata.uid = Some("uid-new".into());
        p.status = None;
    });
    f.reconcile().await.expect("reconciled");
    assert_eq!(f.published(), ["POST", "PATCH", "POST"]);
    assert_eq!(f.events().len(), 2, "{:?}", f.events());
}

/// Polls `f` every 10 ms for up to 10 s.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_failing_watch_is_counted_and_said_but_a_missing_crd_is_not_counted() {
    let api = FakeApi::new();
    api.fail(
        "GET",
        "/apis/monitoring.coreos.com/v1/servicemonitors",
        403,
        "Forbidden",
    );
    let metrics = ReconcilerMetrics::default();
    let (trigger, mut triggered) = mpsc::channel(1);
    let (_, forbidden) = mirror(
        Api::<ServiceMonitor>::all(api.client()),
        watcher::Config::default(),
        trigger.clone(),
        metrics.clone(),
    );
    // No PrometheusRule CRD: the fake API answers 404, as a real one does.
    let (_, missing) = mirror(
        Api::<PrometheusRule>::all(api.client()),
        watcher::Config::default(),
        trigger,
        metrics.clone(),
    );
    let failures = "promreload_reconciler_watch_failures_total{resource=\"ServiceMonitor\"}";
    eventually("the failure is counted", || {
        metrics.encode().contains(&format!("{failures} 1"))
    })
    .await;
    eventually("both errors are kept", || {
        missing.lock().unwrap().is_some() && forbidden.lock().unwrap().is_some()
    })
    .await;
    let why = forbidden.lock().unwrap().clone().unwrap();
    assert!(why.message.contains("Forbidden"), "{why:?}");
    assert!(!why.not_installed, "{why:?}");
    let absent = missing.lock().unwrap().clone().unwrap();
    assert!(absent.not_installed, "{absent:?}");
    assert!(triggered.recv().await.is_some(), "a reconcile is asked for");
    assert!(
        !metrics.encode().contains("resource=\"PrometheusRule\""),
        "{}",
        metrics.encode()
    );
}

#[tokio::test]
async fn a_failing_secret_watch_drops_the_cached_secrets_so_they_are_read_again() {
    let api = FakeApi::new();
    api.fail("GET", "/api/v1/secrets", 403, "Forbidden");
    let metrics = ReconcilerMetrics::default();
    let cache = Arc::new(Mutex::new(Assets::default()));
    let secret: Secret = object("metadata: {name: creds, namespace: monitoring}");
    let config_map: ConfigMap = object("metadata: {name: ca, namespace: monitoring}");
    cache.lock().await.insert_secret(&secret);
    cache.lock().await.insert_config_map(&config_map);
    let (trigger, _triggered) = mpsc::channel(1);
    let watch = tokio::spawn(watch_versions(
        Api::<PartialObjectMeta<Secret>>::all(api.client()),
        Kind::Secret,
        cache.clone(),
        trigger,
        metrics.clone(),
    ));
    let secret_id = (Kind::Secret, "monitoring".to_string(), "creds".to_string());
    let deadline = Instant::now() + Duration::from_secs(10);
    while cache.lock().await.contains(&secret_id) {
        assert!(Instant::now() < deadline, "the Secret is still cached");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    watch.abort();
    let config_map_id = (Kind::ConfigMap, "monitoring".to_string(), "ca".to_string());
    assert!(
        cache.lock().await.contains(&config_map_id),
        "other kinds stay"
    );
    assert!(
        metrics
            .encode()
            .contains("promreload_reconciler_watch_failures_total{resource=\"Secret\"}"),
        "{}",
        metrics.encode()
    );
}

#[test]
fn an_expired_watch_is_a_fresh_list_not_a_failure() {
    let error = |code| {
        watcher::Error::WatchError(
            kube::core::Status::failure("watch", "Expired")
                .with_code(code)
                .boxed(),
        )
    };
    assert!(resynced(&error(410)));
    assert!(!resynced(&error(403)));
    assert!(!resynced(&error(500)));
}

fn pod_monitor(name: &str, endpoint: &str) -> PodMonitor {
    object(&format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\n\
         metadata: {{name: {name}, namespace: monitoring, uid: uid-{name}}}\n\
         spec: {{selector: {{matchLabels: {{app: {name}}}}}, podMetricsEndpoints: [{endpoint}]}}"
    ))
}

fn pod_monitor_path(name: &str) -> String {
    format!("/apis/monitoring.coreos.com/v1/namespaces/monitoring/podmonitors/{name}")
}

/// kube-prometheus's every-selector Prometheus with a good PodMonitor, one whose Secret is
/// missing, a Probe, a good ScrapeConfig and one with a discovery kind not rendered: the bad
/// PodMonitor and ScrapeConfig are each left out with a Warning Event, the rest is written,
/// and the condition and metrics count each kind.
#[tokio::test]
async fn a_bad_pod_monitor_or_scrape_config_costs_only_itself() {
    let p = prometheus(
        "{serviceMonitorSelector: {}, podMonitorSelector: {}, probeSelector: {}, scrapeConfigSelector: {}}",
    );
    let mut f = Fixture::new(&p, vec![service_monitor("{port: web}")]);
    let pod_monitors = [
        pod_monitor("envoy", "{port: http-envoy-prom, path: /stats/prometheus}"),
        pod_monitor("broken", BASIC_AUTH),
    ];
    for pm in &pod_monitors {
        f.api.insert(&pod_monitor_path(&pm.name_any()), pm);
    }
    listed(&mut f.pod_monitors, pod_monitors);
    listed(
        &mut f.probes,
        [object::<Probe>(
            "apiVersion: monitoring.coreos.com/v1\nkind: Probe\n\
             metadata: {name: blackbox, namespace: monitoring, uid: uid-probe}\n\
             spec: {prober: {url: 'blackbox:9115'}, module: http_2xx, \
             targets: {staticConfig: {static: ['https://example.com']}}}",
        )],
    );
    let scrape_config = |name: &str, spec: &str| {
        object::<ScrapeConfig>(&format!(
            "apiVersion: monitoring.coreos.com/v1alpha1\nkind: ScrapeConfig\n\
             metadata: {{name: {name}, namespace: monitoring, uid: uid-{name}}}\nspec: {spec}"
        ))
    };
    let external = scrape_config(
        "external",
        "{staticConfigs: [{targets: ['db.example:9187']}]}",
    );
    let cloud = scrape_config("cloud", "{ec2SDConfigs: [{region: eu-west-1}]}");
    f.list_scrape_configs([external.clone(), cloud]);

    f.reconcile().await.expect("reconciled");
    let config = f.config().expect("a config is written");
    let jobs: Vec<&str> = config
        .lines()
        .filter_map(|l| l.strip_prefix("- job_name: "))
        .collect();
    assert_eq!(
        jobs,
        [
            "serviceMonitor/monitoring/app/0",
            "podMonitor/monitoring/envoy/0",
            "probe/monitoring/blackbox",
            "scrapeConfig/monitoring/external"
        ]
    );
    let (status, reason, message) = f.condition().expect("a condition");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Reconciled"));
    assert_eq!(
        message,
        "1 ServiceMonitors selected, 0 rejected; 2 PodMonitors selected, 1 rejected; \
         1 Probes selected, 0 rejected; 2 ScrapeConfigs selected, 1 rejected"
    );
    let mut events = f.events();
    events.sort();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].0, "PodMonitor/broken");
    assert!(
        events[0].2.contains(
            "spec.podMetricsEndpoints[0].basicAuth.username: Secret monitoring/creds: not found"
        ),
        "{}",
        events[0].2
    );
    assert_eq!(events[1].0, "ScrapeConfig/cloud");
    assert!(
        events[1]
            .2
            .contains("spec.ec2SDConfigs is not rendered by promreload-reconciler"),
        "{}",
        events[1].2
    );
    // Each PodMonitor says whether it is in, and why not.
    let accepted = |name: &str| {
        let pm: PodMonitor = f.api.get(&pod_monitor_path(name)).expect("stored");
        let binding = pm.status.expect("a status").bindings.remove(0);
        assert_eq!(
            (binding.namespace.as_str(), binding.name.as_str()),
            ("monitoring", "k8s")
        );
        binding.conditions[0].clone()
    };
    let envoy = accepted("envoy");
    assert_eq!(
        (envoy.type_.as_str(), envoy.status.as_str()),
        ("Accepted", "True")
    );
    assert_eq!((envoy.reason, envoy.message), (None, None));
    let broken = accepted("broken");
    assert_eq!(
        (broken.status.as_str(), broken.reason.as_deref()),
        ("False", Some("InvalidConfiguration"))
    );
    assert!(
        broken
            .message
            .as_deref()
            .is_some_and(|m| m.contains("basicAuth.username")),
        "{broken:?}"
    );
    let metrics = f.ctx.metrics.encode();
    // Every selected object's: 1 ServiceMonitor, 2 PodMonitors, 1 Probe, 2 ScrapeConfigs.
    assert!(
        metrics.contains("promreload_reconciler_binding_writes_total 6"),
        "{metrics}"
    );
    for line in [
        "promreload_reconciler_scrape_objects_selected{prometheus=\"monitoring/k8s\",kind=\"PodMonitor\"} 1",
        "promreload_reconciler_scrape_objects_rejected{prometheus=\"monitoring/k8s\",kind=\"PodMonitor\"} 1",
        "promreload_reconciler_scrape_objects_selected{prometheus=\"monitoring/k8s\",kind=\"Probe\"} 1",
        "promreload_reconciler_scrape_objects_selected{prometheus=\"monitoring/k8s\",kind=\"ScrapeConfig\"} 1",
        "promreload_reconciler_scrape_objects_rejected{prometheus=\"monitoring/k8s\",kind=\"ScrapeConfig\"} 1",
        "promreload_reconciler_service_monitors_selected{prometheus=\"monitoring/k8s\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }

    // The bad ScrapeConfig gone and the PodMonitor fixed (its Secret created): every job,
    // nothing rejected.
    f.list_scrape_configs([external]);
    let creds: Secret = object(
        "metadata: {name: creds, namespace: monitoring}\ndata: {user: Ym90, password: czNjcjN0}",
    );
    f.api.insert(CREDENTIALS, &creds);
    f.ctx
        .assets
        .lock()
        .await
        .forget(&(Kind::Secret, "monitoring".into(), "creds".into()));
    f.reconcile().await.expect("reconciled again");
    let config = f.config().expect("a config");
    assert!(
        config.contains("- job_name: podMonitor/monitoring/broken/0"),
        "{config}"
    );
    let fixed = accepted("broken");
    assert_eq!((fixed.status.as_str(), fixed.message), ("True", None));
    let (_, _, message) = f.condition().expect("a condition");
    assert_eq!(
        message,
        "1 ServiceMonitors selected, 0 rejected; 2 PodMonitors selected, 0 rejected; \
         1 Probes selected, 0 rejected; 1 ScrapeConfigs selected, 0 rejected"
    );
}
