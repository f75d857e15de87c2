//! The pod template's parts as the operator builds them: volumes and mounts
//! (`BuildCommonVolumes`, `appendServerVolumes`, the web config), the `prometheus` container
//! with its probes, and the config reloader (`CreateConfigReloader`), here promreload,
//! which takes the Go reloader's flags.

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, ExecAction, HTTPGetAction, ObjectFieldSelector, Probe, ProjectedVolumeSource,
    SecretProjection, SecretVolumeSource, SecurityContext, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::reconciler::crd::{Prometheus, PrometheusSpec};
use crate::reconciler::render::log_file_in_default_dir;
use kube::ResourceExt;

use super::args::{by_signal, clean_path, route_prefix};
use super::{
    CONFIG_DIR, CONFIG_FILE_GZ, CONFIG_OUT_DIR, ENVSUBST_FILE, LOG_DIR, RULES_DIR, STORAGE_DIR,
    Settings, Source, TLS_ASSETS_DIR, WEB_CONFIG_FILE,
};

/// The name of the data volume: `prometheus-<name>-db`, or the claim template's own name.
pub fn data_volume_name(prometheus: &Prometheus) -> String {
    let template = prometheus.spec.storage.as_ref();
    let named = template
        .and_then(|s| s.volume_claim_template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.name.clone())
        .filter(|n| !n.is_empty());
    named.unwrap_or_else(|| format!("prometheus-{}-db", prometheus.name_any()))
}

/// The port name of the web server (`web` when unset).
pub fn port_name(spec: &PrometheusSpec) -> &str {
    spec.port_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or("web")
}

/// A DNS-1123 label from a prefix and a name, as the operator's `ResourceNamer` makes
/// volume names of `secrets` and `configMaps` (lower case, other characters as `-`, 63 at
/// most).
pub fn volume_name(prefix: &str, name: &str) -> Result<String, String> {
    let mut label = String::new();
    let mut replacing = false;
    for c in format!("{prefix}-{name}").to_lowercase().chars() {
        let valid = c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if valid {
            label.push(c);
        } else if !replacing {
            label.push('-');
        }
        replacing = !valid;
    }
    let mut label = label.trim_matches('-').to_string();
    label.truncate(63);
    let valid = !label.is_empty()
        && !label.ends_with('-')
        && label.starts_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(label)
    } else {
        Err(format!(
            "{label:?} (from {name:?}) is not a valid volume name: a DNS-1123 label"
        ))
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

fn secret_volume(name: &str, secret: &str) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.into()),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

fn config_map_volume(name: &str, config_map: &str, optional: bool) -> Volume {
    Volume {
        name: name.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.into(),
            optional: optional.then_some(true),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }
}

fn empty_dir(name: &str, medium: Option<&str>) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: medium.map(Into::into),
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// The volumes of the pod but the data volume and the user's (which the StatefulSet adds),
/// and the `prometheus` container's mounts.
pub fn volumes(
    prometheus: &Prometheus,
    source: Source,
    rule_config_maps: &[String],
    tls_secrets: &[String],
) -> Result<(Vec<Volume>, Vec<VolumeMount>), String> {
    let spec = &prometheus.spec;
    let name = prometheus.name_any();
    let tls = Volume {
        name: "tls-assets".into(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(
                tls_secrets
                    .iter()
                    .map(|s| VolumeProjection {
                        secret: Some(SecretProjection {
                            name: s.clone(),
                            ..SecretProjection::default()
                        }),
                        ..VolumeProjection::default()
                    })
                    .collect(),
            ),
            ..ProjectedVolumeSource::default()
        }),
        ..Volume::default()
    };
    let mut volumes = vec![tls, empty_dir("config-out", Some("Memory"))];
    if source == Source::Volume {
        volumes.insert(0, secret_volume("config", &format!("prometheus-{name}")));
    }
    let sub_path = match &spec.storage {
        Some(s) if s.disable_mount_sub_path != Some(true) => Some("prometheus-db".to_string()),
        _ => None,
    };
    let mut mounts = vec![
        mount("config-out", CONFIG_OUT_DIR, true),
        mount("tls-assets", TLS_ASSETS_DIR, true),
        VolumeMount {
            sub_path,
            ..mount(&data_volume_name(prometheus), STORAGE_DIR, false)
        },
    ];
    mounts.extend(spec.volume_mounts.iter().cloned());
    for secret in &spec.secrets {
        let volume = volume_name("secret", secret).map_err(|e| format!("spec.secrets: {e}"))?;
        volumes.push(secret_volume(&volume, secret));
        mounts.push(mount(
            &volume,
            &format!("/etc/prometheus/secrets/{secret}"),
            true,
        ));
    }
    for config_map in &spec.config_maps {
        let volume =
            volume_name("configmap", config_map).map_err(|e| format!("spec.configMaps: {e}"))?;
        volumes.push(config_map_volume(&volume, config_map, false));
        mounts.push(mount(
            &volume,
            &format!("/etc/prometheus/configmaps/{config_map}"),
            true,
        ));
    }
    let default_dir = |file: &Option<String>| file.as_deref().is_some_and(log_file_in_default_dir);
    let scrape_failure_log = spec.scrape_failure_log_file.is_some();
    if default_dir(&spec.scrape_failure_log_file) {
        volumes.push(empty_dir("log-file", None));
        mounts.push(mount("log-file", LOG_DIR, false));
    }
    let query_log = default_dir(&spec.query_log_file) && !scrape_failure_log;
    if query_log {
        volumes.push(empty_dir("log-file", None));
    }
    for cm in rule_config_maps {
        volumes.push(config_map_volume(cm, cm, true));
    }
    for cm in rule_config_maps {
        mounts.push(mount(cm, &format!("{RULES_DIR}/{cm}"), true));
    }
    if query_log {
        mounts.push(mount("log-file", LOG_DIR, false));
    }
    Ok((volumes, mounts))
}

/// The web config file's volume and mount.
pub fn web_config(prometheus: &Prometheus) -> (Volume, VolumeMount) {
    let secret = super::web_config_secret_name(prometheus);
    let volume = secret_volume("web-config", &secret);
    let mount = VolumeMount {
        sub_path: Some("web-config.yaml".into()),
        ..mount("web-config", WEB_CONFIG_FILE, true)
    };
    (volume, mount)
}

/// The operator's container security context: read-only root, no privilege escalation, no
/// capabilities.
fn locked_down() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

/// `sh -c` probing `url` with curl or wget, as the operator probes a server that listens on
/// the loopback only.
fn exec_probe(url: &str) -> ExecAction {
    ExecAction {
        command: Some(vec![
            "sh".into(),
            "-c".into(),
            format!(
                "if [ -x \"$(command -v curl)\" ]; then exec curl --fail {url}; elif [ -x \
                 \"$(command -v wget)\" ]; then exec wget -q -O /dev/null {url}; else exit 1; fi"
            ),
        ]),
    }
}

/// The startup, readiness and liveness probes (`BuildProbes`).
fn probes(spec: &PrometheusSpec) -> (Probe, Probe, Probe) {
    let handler = |path: &str| {
        let path = clean_path(route_prefix(spec), path);
        if spec.listen_local == Some(true) {
            Probe {
                exec: Some(exec_probe(&format!("http://localhost:9090{path}"))),
                ..Probe::default()
            }
        } else {
            Probe {
                http_get: Some(HTTPGetAction {
                    path: Some(path),
                    port: IntOrString::String(port_name(spec).into()),
                    ..HTTPGetAction::default()
                }),
                ..Probe::default()
            }
        }
    };
    let (mut period, mut failures) = (15.0, 60.0);
    let max = f64::from(spec.maximum_startup_duration_seconds.unwrap_or(0));
    if max >= 60.0 {
        failures = (max / 60.0).ceil();
        period = (max / failures).ceil();
    }
    let startup = Probe {
        timeout_seconds: Some(3),
        period_seconds: Some(period as i32),
        failure_threshold: Some(failures as i32),
        ..handler("/-/ready")
    };
    let readiness = Probe {
        timeout_seconds: Some(3),
        period_seconds: Some(5),
        failure_threshold: Some(3),
        ..handler("/-/ready")
    };
    let liveness = Probe {
        timeout_seconds: Some(3),
        period_seconds: Some(5),
        failure_threshold: Some(6),
        ..handler("/-/healthy")
    };
    (startup, readiness, liveness)
}

/// The `prometheus` container.
pub fn prometheus_container(
    spec: &PrometheusSpec,
    image: String,
    args: Vec<String>,
    mounts: Vec<VolumeMount>,
) -> Container {
    let (startup, readiness, liveness) = probes(spec);
    let ports = (spec.listen_local != Some(true)).then(|| {
        vec![ContainerPort {
            name: Some(port_name(spec).into()),
            container_port: 9090,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]
    });
    let go_gc = spec.runtime.as_ref().and_then(|r| r.go_gc);
    let env = go_gc
        .filter(|_| !Version::of(spec.version.as_deref()).is_ok_and(|v| v.at_least(2, 53, 0)))
        .map(|gc| {
            vec![EnvVar {
                name: "GOGC".into(),
                value: Some(gc.to_string()),
                ..EnvVar::default()
            }]
        });
    Container {
        name: "prometheus".into(),
        image: Some(image),
        image_pull_policy: spec.image_pull_policy.clone(),
        ports,
        args: Some(args),
        env,
        volume_mounts: Some(mounts),
        startup_probe: Some(startup),
        liveness_probe: Some(liveness),
        readiness_probe: Some(readiness),
        resources: spec.resources.clone(),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        security_context: Some(locked_down()),
        ..Container::default()
    }
}

use super::version::Version;

/// The config reloader: `init-config-reloader` (renders once, before Prometheus starts) or
/// `config-reloader`, with the Go reloader's flags.
pub fn reloader(
    prometheus: &Prometheus,
    settings: &Settings,
    source: Source,
    init: bool,
    shard: i32,
    rule_config_maps: &[String],
) -> Container {
    let spec = &prometheus.spec;
    let mut mounts = vec![mount("config-out", CONFIG_OUT_DIR, false)];
    if source == Source::Volume {
        mounts.insert(0, mount("config", CONFIG_DIR, false));
    }
    if spec.web.is_some() {
        mounts.push(web_config(prometheus).1);
    }
    let mut watched: Vec<String> = Vec::new();
    for cm in rule_config_maps {
        let path = format!("{RULES_DIR}/{cm}");
        mounts.push(mount(cm, &path, false));
        watched.push(path);
    }
    let mut args = Vec::new();
    let mut ports = Vec::new();
    let listen_local = !init && !by_signal(spec) && spec.listen_local == Some(true);
    if init {
        args.push("--watch-interval=0".to_string());
    }
    if listen_local {
        args.push("--listen-address=localhost:8080".into());
    } else {
        let (port, name) = if init {
            (8081, "reloader-init")
        } else {
            (8080, "reloader-web")
        };
        args.push(format!("--listen-address=:{port}"));
        ports.push(ContainerPort {
            name: Some(name.into()),
            container_port: port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        });
    }
    if !init && spec.web.is_some() {
        args.push(format!("--web-config-file={WEB_CONFIG_FILE}"));
    }
    let prefix = route_prefix(spec);
    if !init {
        if by_signal(spec) {
            args.push("--reload-method=signal".into());
            let info = clean_path(prefix, "/api/v1/status/runtimeinfo");
            args.push(format!("--runtimeinfo-url=http://localhost:9090{info}"));
        } else {
            let reload = clean_path(prefix, "/-/reload");
            args.push(format!("--reload-url=http://localhost:9090{reload}"));
        }
    }
    match source {
        Source::Volume => {
            args.push(format!("--config-file={CONFIG_DIR}/{CONFIG_FILE_GZ}"));
            watched.push(CONFIG_DIR.into());
        }
        Source::Api => args.push(format!(
            "--config-secret=prometheus-{}",
            prometheus.name_any()
        )),
    }
    args.push(format!(
        "--config-envsubst-file={CONFIG_OUT_DIR}/{ENVSUBST_FILE}"
    ));
    args.extend(watched.iter().map(|dir| format!("--watched-dir={dir}")));
    if let Some(level) = spec
        .log_level
        .as_deref()
        .filter(|l| !l.is_empty() && *l != "info")
    {
        args.push(format!("--log-level={level}"));
    }
    if let Some(format) = spec
        .log_format
        .as_deref()
        .filter(|f| !f.is_empty() && *f != "logfmt")
    {
        args.push(format!("--log-format={format}"));
    }
    let env = vec![
        EnvVar {
            name: "POD_NAME".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "metadata.name".into(),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        },
        EnvVar {
            name: "SHARD".into(),
            value: Some(shard.to_string()),
            ..EnvVar::default()
        },
    ];
    Container {
        name: if init {
            "init-config-reloader"
        } else {
            "config-reloader"
        }
        .into(),
        image: Some(settings.reloader_image.clone()),
        image_pull_policy: spec.image_pull_policy.clone(),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        env: Some(env),
        command: Some(vec!["/bin/prometheus-config-reloader".into()]),
        args: Some(args),
        ports: (!ports.is_empty()).then_some(ports),
        volume_mounts: Some(mounts),
        resources: Some(settings.reloader_resources.clone()),
        security_context: Some(locked_down()),
        ..Container::default()
    }
}

/// The generated containers with the user's merged in by name, as `MergePatchContainers`
/// merges them: a strategic merge patch of each same-named container (lists of ports, env,
/// volume mounts and devices merged by their keys, other lists replaced), then the user's
/// other containers in their order.
pub fn merge_containers(
    field: &str,
    base: Vec<Container>,
    patches: &[Container],
) -> Result<Vec<Container>, String> {
    let mut out = Vec::with_capacity(base.len() + patches.len());
    for container in base {
        let Some(patch) = patches.iter().find(|p| p.name == container.name) else {
            out.push(container);
            continue;
        };
        let mut merged = serde_json::to_value(&container).expect("a Container serializes");
        let patch_json = serde_json::to_value(patch).expect("a Container serializes");
        merge_value(&mut merged, &patch_json, &CONTAINER_LISTS);
        let mut merged: Container = serde_json::from_value(merged)
            .map_err(|e| format!("{field}: container {:?}: {e}", patch.name))?;
        keep_one_probe_handler(&mut merged, patch);
        out.push(merged);
    }
    let generated: Vec<String> = out.iter().map(|c| c.name.clone()).collect();
    out.extend(
        patches
            .iter()
            .filter(|p| !generated.contains(&p.name))
            .cloned(),
    );
    Ok(out)
}

/// A container's lists that a strategic merge patch merges, and their merge keys.
const CONTAINER_LISTS: [(&str, &str); 4] = [
    ("ports", "containerPort"),
    ("env", "name"),
    ("volumeMounts", "mountPath"),
    ("volumeDevices", "devicePath"),
];

/// A strategic merge of `patch` into `base` (JSON): maps merged key by key, `null`
/// deleting; the listed lists merged by key and ordered as the API machinery orders them
/// (the patch's items in the patch's order, the others where they were); other values
/// replaced.
fn merge_value(base: &mut serde_json::Value, patch: &serde_json::Value, lists: &[(&str, &str)]) {
    use serde_json::Value;
    let (Value::Object(base_map), Value::Object(patch_map)) = (&mut *base, patch) else {
        *base = patch.clone();
        return;
    };
    for (key, value) in patch_map {
        if value.is_null() {
            base_map.remove(key);
            continue;
        }
        let list_key = lists.iter().find(|(k, _)| k == key).map(|(_, m)| *m);
        match (base_map.get_mut(key), list_key, value) {
            (Some(Value::Array(original)), Some(merge_key), Value::Array(items)) => {
                *original = merge_list(original, items, merge_key);
            }
            (Some(existing @ Value::Object(_)), _, Value::Object(_)) => {
                merge_value(existing, value, &[]);
            }
            _ => {
                base_map.insert(key.clone(), value.clone());
            }
        }
    }
}

/// `mergeSlice` for lists of maps with a merge key.
fn merge_list(
    original: &[serde_json::Value],
    patch: &[serde_json::Value],
    merge_key: &str,
) -> Vec<serde_json::Value> {
    let key = |v: &serde_json::Value| v.get(merge_key).cloned();
    let mut merged = original.to_vec();
    for item in patch {
        match merged.iter_mut().find(|m| key(m) == key(item)) {
            Some(existing) => merge_value(existing, item, &[]),
            None => merged.push(item.clone()),
        }
    }
    let in_patch = |v: &serde_json::Value| patch.iter().any(|p| key(p) == key(v));
    let position = |list: &[serde_json::Value], v: &serde_json::Value| {
        list.iter().position(|o| key(o) == key(v))
    };
    let mut from_patch: Vec<_> = merged.iter().filter(|v| in_patch(v)).cloned().collect();
    from_patch.sort_by_key(|v| position(patch, v));
    let server_only: Vec<_> = merged.iter().filter(|v| !in_patch(v)).cloned().collect();
    // `mergeSortedSlice`: a server-only item goes before a patch item that comes after it in
    // the original list.
    let (mut left, mut right) = (
        server_only.into_iter().peekable(),
        from_patch.into_iter().peekable(),
    );
    let mut out = Vec::new();
    loop {
        match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => {
                let before = matches!(
                    (position(original, l), position(original, r)),
                    (Some(a), Some(b)) if a < b
                );
                out.push(if before { left.next() } else { right.next() }.expect("peeked"));
            }
            (Some(_), None) => out.push(left.next().expect("peeked")),
            (None, Some(_)) => out.push(right.next().expect("peeked")),
            (None, None) => break,
        }
    }
    out
}

/// `sanitizeProbeHandlers`: a merged probe with two handlers keeps the patch's.
fn keep_one_probe_handler(merged: &mut Container, patch: &Container) {
    let pairs = [
        (&mut merged.startup_probe, &patch.startup_probe),
        (&mut merged.readiness_probe, &patch.readiness_probe),
        (&mut merged.liveness_probe, &patch.liveness_probe),
    ];
    for (merged, patch) in pairs {
        let (Some(merged), Some(patch)) = (merged.as_mut(), patch) else {
            continue;
        };
        let handlers = [
            merged.http_get.is_some(),
            merged.tcp_socket.is_some(),
            merged.exec.is_some(),
            merged.grpc.is_some(),
        ];
        if handlers.iter().filter(|h| **h).count() > 1 {
            merged.http_get = patch.http_get.clone();
            merged.tcp_socket = patch.tcp_socket.clone();
            merged.exec = patch.exec.clone();
            merged.grpc = patch.grpc.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(yaml: &str) -> Container {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn user_containers_merge_by_name_as_a_strategic_merge_patch() {
        let base = vec![
            container(
                "{name: prometheus, image: p, args: [--a], env: [{name: A, value: '1'}, {name: B, value: '2'}], \
                 resources: {limits: {cpu: '1'}}, readinessProbe: {httpGet: {path: /-/ready, port: web}, periodSeconds: 5}}",
            ),
            container("{name: config-reloader, image: r}"),
        ];
        let patches = vec![
            container(
                "{name: prometheus, args: [--b], env: [{name: C, value: '3'}, {name: A, value: '9'}], \
                 resources: {limits: {memory: 1Gi}}, readinessProbe: {exec: {command: [true]}}}",
            ),
            container("{name: extra, image: e}"),
        ];
        let out = merge_containers("spec.containers", base, &patches).unwrap();
        let names: Vec<_> = out.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["prometheus", "config-reloader", "extra"]);
        let p = &out[0];
        assert_eq!(p.image.as_deref(), Some("p"));
        assert_eq!(p.args.as_deref(), Some(&["--b".to_string()][..]));
        let env: Vec<_> = p
            .env
            .iter()
            .flatten()
            .map(|e| format!("{}={}", e.name, e.value.as_deref().unwrap_or("")))
            .collect();
        // The API machinery's order: the patch's items in the patch's order, then B, which
        // came after A in the original.
        assert_eq!(env, ["C=3", "A=9", "B=2"]);
        let limits = p.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits.len(), 2);
        let probe = p.readiness_probe.as_ref().unwrap();
        assert!(probe.http_get.is_none() && probe.exec.is_some());
        assert_eq!(probe.period_seconds, Some(5));
    }

    #[test]
    fn volume_names_are_dns_labels_as_the_operators() {
        assert_eq!(
            volume_name("secret", "Etcd_Certs").unwrap(),
            "secret-etcd-certs"
        );
        assert_eq!(volume_name("configmap", "a.b").unwrap(), "configmap-a-b");
        let long = volume_name("secret", &"x".repeat(80)).unwrap();
        assert_eq!(long.len(), 63);
    }
}
