//! The parts of a Prometheus config that are not scrape jobs of ServiceMonitors, rendered as
//! prometheus-operator renders them: `remote_write`, `remote_read`, `alerting`, and the
//! user's own scrape jobs, alert relabelings and Alertmanager configs from Secret keys
//! (`additional*`). Their credentials and TLS material come from Secrets and ConfigMaps in the
//! Prometheus's namespace, through the same client code as scrape jobs.
//!
//! A reference that cannot be resolved, or a Secret key that is not a YAML list, is an error
//! for the whole Prometheus (as with the operator): no config rather than one without it.

use serde_yaml_ng::{Mapping, Value};

use super::crd::{
    AlertmanagerEndpoints, Authorization, Prometheus, PrometheusSpec, RemoteReadSpec,
    RemoteWriteSpec, SecretKeySelector,
};
use super::credentials::{Assets, LookupError, Unreadable};
use super::http::{Authz, Client, Proxy, Settings, TlsAssets};
use super::render::{map, sharding_rules, string_map, strings, supports, user_rule};
use kube::ResourceExt;

/// What rendering the outputs of one Prometheus needs.
pub struct Outputs<'a> {
    spec: &'a PrometheusSpec,
    client: Client<'a>,
}

impl<'a> Outputs<'a> {
    /// The outputs of `prometheus`, reading references from `assets`.
    pub fn new(
        prometheus: &'a Prometheus,
        namespace: &'a str,
        assets: &'a Assets,
        supports: &'a dyn Fn(u64, u64) -> bool,
    ) -> Self {
        Self {
            spec: &prometheus.spec,
            client: Client {
                namespace,
                assets,
                supports,
            },
        }
    }

    fn supports(&self, major: u64, minor: u64) -> bool {
        supports(self.spec, major, minor)
    }

    /// The value of an `additional*` Secret key: `None` when unset, or when the reference is
    /// `optional` and the Secret or key is missing.
    fn additional(
        &self,
        field: &str,
        sel: &Option<SecretKeySelector>,
    ) -> Result<Option<&str>, String> {
        let Some(sel) = sel else {
            return Ok(None);
        };
        let optional = sel.optional.unwrap_or(false);
        match self.client.assets.secret_key(self.client.namespace, sel) {
            Ok(text) => Ok(Some(text)),
            Err(
                LookupError::NotRead { .. }
                | LookupError::NoKey { .. }
                | LookupError::Unreadable {
                    why: Unreadable::NotFound,
                    ..
                },
            ) if optional => Ok(None),
            Err(e) => Err(format!("spec.{field}: {e}")),
        }
    }

    /// An `additional*` Secret key's text as a YAML list of mappings.
    fn additional_list(
        &self,
        field: &str,
        sel: &Option<SecretKeySelector>,
    ) -> Result<Vec<Value>, String> {
        let Some(text) = self.additional(field, sel)? else {
            return Ok(Vec::new());
        };
        let value: Value = serde_yaml_ng::from_str(text)
            .map_err(|e| format!("spec.{field}: the Secret key is not YAML: {e}"))?;
        match value {
            Value::Null => Ok(Vec::new()),
            Value::Sequence(items) => {
                if let Some(i) = items.iter().position(|v| !v.is_mapping()) {
                    return Err(format!("spec.{field}: item {i} is not a mapping"));
                }
                Ok(items)
            }
            _ => Err(format!(
                "spec.{field}: the Secret key must hold a YAML list"
            )),
        }
    }

    /// The user's own scrape jobs (`additionalScrapeConfigs`), with the sharding rules
    /// appended to each one's relabelings when there are several shards and it has no
    /// `hashmod` rule of its own.
    pub fn additional_scrape_configs(
        &self,
        shards: u64,
        retention_policy: bool,
    ) -> Result<Vec<Value>, String> {
        let jobs = self.additional_list(
            "additionalScrapeConfigs",
            &self.spec.additional_scrape_configs,
        )?;
        if shards <= 1 {
            return Ok(jobs);
        }
        let mut out = Vec::with_capacity(jobs.len());
        for (i, job) in jobs.into_iter().enumerate() {
            let Value::Mapping(job) = job else {
                unreachable!("checked above")
            };
            let mut rules = Vec::new();
            let mut rest = Mapping::new();
            for (k, v) in job {
                if k.as_str() == Some("relabel_configs") {
                    match v {
                        Value::Sequence(r) if r.iter().all(Value::is_mapping) => rules = r,
                        Value::Null => {}
                        _ => {
                            return Err(format!(
                                "spec.additionalScrapeConfigs: item {i}: relabel_configs is not a list of mappings"
                            ));
                        }
                    }
                } else {
                    rest.insert(k, v);
                }
            }
            let hashmod = rules
                .iter()
                .any(|r| r.get("action").and_then(Value::as_str) == Some("hashmod"));
            if !hashmod {
                rules.extend(sharding_rules(shards, retention_policy));
            }
            rest.insert("relabel_configs".into(), Value::Sequence(rules));
            out.push(Value::Mapping(rest));
        }
        Ok(out)
    }

    /// `remote_write`, or `None` when there is none.
    pub fn remote_write(&self, tls_assets: &mut TlsAssets) -> Result<Option<Value>, String> {
        if self.spec.remote_write.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::new();
        for (i, rw) in self.spec.remote_write.iter().enumerate() {
            out.push(Value::Mapping(self.one_remote_write(
                rw,
                &format!("spec.remoteWrite[{i}]"),
                tls_assets,
            )?));
        }
        Ok(Some(Value::Sequence(out)))
    }

    fn one_remote_write(
        &self,
        rw: &RemoteWriteSpec,
        path: &str,
        tls_assets: &mut TlsAssets,
    ) -> Result<Mapping, String> {
        let mut m = Mapping::new();
        m.insert("url".into(), rw.url.as_str().into());
        if let Some(timeout) = &rw.remote_timeout {
            m.insert("remote_timeout".into(), timeout.as_str().into());
        }
        if !rw.headers.is_empty() && self.supports(2, 15) {
            m.insert("headers".into(), string_map(&rw.headers));
        }
        if let Some(name) = rw
            .name
            .as_deref()
            .filter(|n| !n.is_empty() && self.supports(2, 15))
        {
            m.insert("name".into(), name.into());
        }
        if let Some(version) = rw
            .message_version
            .as_deref()
            .filter(|_| self.supports(2, 54))
        {
            let message = if version == "V2.0" {
                "io.prometheus.write.v2.Request"
            } else {
                "prometheus.WriteRequest"
            };
            m.insert("protobuf_message".into(), message.into());
        }
        if let Some(on) = rw.send_exemplars.filter(|_| self.supports(2, 27)) {
            m.insert("send_exemplars".into(), on.into());
        }
        if let Some(on) = rw.send_native_histograms.filter(|_| self.supports(2, 40)) {
            m.insert("send_native_histograms".into(), on.into());
        }
        if !rw.write_relabel_configs.is_empty() {
            let rules = rw.write_relabel_configs.iter().map(user_rule).collect();
            m.insert("write_relabel_configs".into(), Value::Sequence(rules));
        }
        let settings = Settings {
            basic_auth: rw.basic_auth.as_ref(),
            bearer_token: rw.bearer_token.as_deref(),
            bearer_token_file: rw.bearer_token_file.as_deref(),
            authorization: rw.authorization.as_ref().map(authz),
            oauth2: rw.oauth2.as_ref(),
            tls: rw.tls_config.clone(),
            proxy: Proxy::of(&rw.proxy),
            ..Settings::default()
        };
        m.extend(self.client.settings(&settings, path, tls_assets)?);
        if let Some(on) = rw.follow_redirects.filter(|_| self.supports(2, 26)) {
            m.insert("follow_redirects".into(), on.into());
        }
        if let Some(on) = rw.enable_http2.filter(|_| self.supports(2, 35)) {
            m.insert("enable_http2".into(), on.into());
        }
        if let Some(q) = &rw.queue_config {
            let mut queue = Mapping::new();
            let set = |v: Option<i64>| v.filter(|n| *n != 0);
            if let Some(n) = set(q.capacity) {
                queue.insert("capacity".into(), n.into());
            }
            if let Some(n) = set(q.min_shards).filter(|_| self.supports(2, 6)) {
                queue.insert("min_shards".into(), n.into());
            }
            if let Some(n) = set(q.max_shards) {
                queue.insert("max_shards".into(), n.into());
            }
            if let Some(n) = set(q.max_samples_per_send) {
                queue.insert("max_samples_per_send".into(), n.into());
            }
            if let Some(d) = &q.batch_send_deadline {
                queue.insert("batch_send_deadline".into(), d.as_str().into());
            }
            if let Some(n) = set(q.max_retries).filter(|_| !self.supports(2, 12)) {
                queue.insert("max_retries".into(), n.into());
            }
            if let Some(d) = &q.min_backoff {
                queue.insert("min_backoff".into(), d.as_str().into());
            }
            if let Some(d) = &q.max_backoff {
                queue.insert("max_backoff".into(), d.as_str().into());
            }
            if q.retry_on_rate_limit == Some(true) && self.supports(2, 26) {
                queue.insert("retry_on_http_429".into(), true.into());
            }
            if let Some(d) = q
                .sample_age_limit
                .as_deref()
                .filter(|_| self.supports(2, 50))
            {
                queue.insert("sample_age_limit".into(), d.into());
            }
            m.insert("queue_config".into(), Value::Mapping(queue));
        }
        if let Some(meta) = rw.metadata_config.as_ref().filter(|_| self.supports(2, 23)) {
            // Prometheus sends no metadata with remote write 2.0.
            let send = meta.send && rw.message_version.as_deref() != Some("V2.0");
            let mut out = Mapping::new();
            out.insert("send".into(), send.into());
            if let Some(every) = meta.send_interval.as_deref().filter(|s| !s.is_empty()) {
                out.insert("send_interval".into(), every.into());
            }
            if let Some(n) = meta.max_samples_per_send.filter(|_| self.supports(2, 29)) {
                out.insert("max_samples_per_send".into(), n.into());
            }
            m.insert("metadata_config".into(), Value::Mapping(out));
        }
        if let Some(on) = rw.round_robin_dns.filter(|_| self.supports(3, 1)) {
            m.insert("round_robin_dns".into(), on.into());
        }
        Ok(m)
    }

    /// `remote_read`, or `None` when there is none.
    pub fn remote_read(&self, tls_assets: &mut TlsAssets) -> Result<Option<Value>, String> {
        if self.spec.remote_read.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::new();
        for (i, rr) in self.spec.remote_read.iter().enumerate() {
            out.push(Value::Mapping(self.one_remote_read(
                rr,
                &format!("spec.remoteRead[{i}]"),
                tls_assets,
            )?));
        }
        Ok(Some(Value::Sequence(out)))
    }

    fn one_remote_read(
        &self,
        rr: &RemoteReadSpec,
        path: &str,
        tls_assets: &mut TlsAssets,
    ) -> Result<Mapping, String> {
        let mut m = Mapping::new();
        m.insert("url".into(), rr.url.as_str().into());
        if let Some(timeout) = &rr.remote_timeout {
            m.insert("remote_timeout".into(), timeout.as_str().into());
        }
        if !rr.headers.is_empty() && self.supports(2, 26) {
            m.insert("headers".into(), string_map(&rr.headers));
        }
        if let Some(name) = rr
            .name
            .as_deref()
            .filter(|n| !n.is_empty() && self.supports(2, 15))
        {
            m.insert("name".into(), name.into());
        }
        if !rr.required_matchers.is_empty() {
            m.insert(
                "required_matchers".into(),
                string_map(&rr.required_matchers),
            );
        }
        if rr.read_recent == Some(true) {
            m.insert("read_recent".into(), true.into());
        }
        let settings = Settings {
            basic_auth: rr.basic_auth.as_ref(),
            bearer_token: rr.bearer_token.as_deref(),
            bearer_token_file: rr.bearer_token_file.as_deref(),
            authorization: rr.authorization.as_ref().map(authz),
            oauth2: rr.oauth2.as_ref(),
            tls: rr.tls_config.clone(),
            proxy: Proxy::of(&rr.proxy),
            ..Settings::default()
        };
        m.extend(self.client.settings(&settings, path, tls_assets)?);
        if let Some(on) = rr.follow_redirects.filter(|_| self.supports(2, 26)) {
            m.insert("follow_redirects".into(), on.into());
        }
        if let Some(on) = rr.filter_external_labels.filter(|_| self.supports(2, 34)) {
            m.insert("filter_external_labels".into(), on.into());
        }
        Ok(m)
    }

    /// `alerting`: the replica label dropped (so Alertmanager deduplicates the replicas'
    /// alerts), the user's alert relabelings, and the Alertmanagers, or `None` when neither
    /// `alerting` nor the `additional*` alerting Secrets are set.
    pub fn alerting(
        &self,
        prometheus: &Prometheus,
        tls_assets: &mut TlsAssets,
    ) -> Result<Option<Value>, String> {
        let spec = self.spec;
        if spec.alerting.is_none()
            && spec.additional_alert_relabel_configs.is_none()
            && spec.additional_alert_manager_configs.is_none()
        {
            return Ok(None);
        }
        let mut alertmanagers = Vec::new();
        let own_namespace = prometheus.namespace().unwrap_or_default();
        for (i, am) in spec
            .alerting
            .iter()
            .flat_map(|a| &a.alertmanagers)
            .enumerate()
        {
            let path = format!("spec.alerting.alertmanagers[{i}]");
            alertmanagers.push(Value::Mapping(self.alertmanager(
                am,
                &own_namespace,
                &path,
                tls_assets,
            )?));
        }
        alertmanagers.extend(self.additional_list(
            "additionalAlertManagerConfigs",
            &spec.additional_alert_manager_configs,
        )?);
        let mut relabelings = Vec::new();
        let replica = spec
            .replica_external_label_name
            .as_deref()
            .unwrap_or("prometheus_replica");
        if !replica.is_empty() {
            relabelings.push(map([
                ("action", "labeldrop".into()),
                ("regex", regex::escape(replica).into()),
            ]));
        }
        relabelings.extend(self.additional_list(
            "additionalAlertRelabelConfigs",
            &spec.additional_alert_relabel_configs,
        )?);
        Ok(Some(map([
            ("alert_relabel_configs", Value::Sequence(relabelings)),
            ("alertmanagers", Value::Sequence(alertmanagers)),
        ])))
    }

    fn alertmanager(
        &self,
        am: &AlertmanagerEndpoints,
        own_namespace: &str,
        path: &str,
        tls_assets: &mut TlsAssets,
    ) -> Result<Mapping, String> {
        let mut m = Mapping::new();
        if let Some(scheme) = &am.scheme {
            m.insert("scheme".into(), scheme.to_ascii_lowercase().into());
        }
        if let Some(prefix) = &am.path_prefix {
            m.insert("path_prefix".into(), prefix.as_str().into());
        }
        if let Some(timeout) = &am.timeout {
            m.insert("timeout".into(), timeout.as_str().into());
        }
        if let Some(on) = am.enable_http2.filter(|_| self.supports(2, 35)) {
            m.insert("enable_http2".into(), on.into());
        }
        let settings = Settings {
            basic_auth: am.basic_auth.as_ref().filter(|_| self.supports(2, 26)),
            bearer_token_file: am.bearer_token_file.as_deref(),
            authorization: am.authorization.as_ref().map(|a| Authz {
                type_: a.type_.as_deref(),
                credentials: a.credentials.as_ref(),
                credentials_file: None,
            }),
            tls: am.tls_config.clone(),
            proxy: Proxy::of(&am.proxy),
            ..Settings::default()
        };
        m.extend(self.client.settings(&settings, path, tls_assets)?);
        let slices = self.spec.service_discovery_role.as_deref() == Some("EndpointSlice")
            && self.supports(2, 21);
        let namespace = am.namespace.as_deref().unwrap_or(own_namespace);
        let sd = map([
            (
                "role",
                if slices { "endpointslice" } else { "endpoints" }.into(),
            ),
            ("namespaces", map([("names", strings(&[namespace]))])),
        ]);
        m.insert("kubernetes_sd_configs".into(), Value::Sequence(vec![sd]));
        if let Some(version) = am.api_version.as_deref().filter(|_| self.supports(2, 11)) {
            let v1_allowed = !self.supports(3, 0);
            match version.to_ascii_uppercase().as_str() {
                "V1" if v1_allowed => {
                    m.insert("api_version".into(), "v1".into());
                }
                "V2" => {
                    m.insert("api_version".into(), "v2".into());
                }
                _ => {}
            }
        }
        let mut rules = vec![map([
            ("action", "keep".into()),
            (
                "source_labels",
                strings(&["__meta_kubernetes_service_name"]),
            ),
            ("regex", am.name.as_str().into()),
        ])];
        use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
        match &am.port {
            Some(IntOrString::String(name)) if !name.is_empty() => {
                let label = if slices {
                    "__meta_kubernetes_endpointslice_port_name"
                } else {
                    "__meta_kubernetes_endpoint_port_name"
                };
                rules.push(map([
                    ("action", "keep".into()),
                    ("source_labels", strings(&[label])),
                    ("regex", name.as_str().into()),
                ]));
            }
            Some(IntOrString::Int(port)) if *port != 0 => {
                rules.push(map([
                    ("action", "keep".into()),
                    (
                        "source_labels",
                        strings(&["__meta_kubernetes_pod_container_port_number"]),
                    ),
                    ("regex", port.to_string().into()),
                ]));
            }
            _ => {}
        }
        rules.extend(am.relabelings.iter().map(user_rule));
        m.insert("relabel_configs".into(), Value::Sequence(rules));
        if !am.alert_relabelings.is_empty() && self.supports(2, 51) {
            let rules = am.alert_relabelings.iter().map(user_rule).collect();
            m.insert("alert_relabel_configs".into(), Value::Sequence(rules));
        }
        Ok(m)
    }
}

fn authz(a: &Authorization) -> Authz<'_> {
    Authz {
        type_: a.type_.as_deref(),
        credentials: a.credentials.as_ref(),
        credentials_file: a.credentials_file.as_deref(),
    }
}
