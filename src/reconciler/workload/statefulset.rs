//! The StatefulSet of one shard (`makeStatefulSet`, `makeStatefulSetSpec`), and the checks
//! that refuse a Prometheus whose Pods cannot be built as asked.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use crate::reconciler::crd::{Prometheus, PrometheusSpec};
use crate::reconciler::secret;
use crate::reconciler::validate::PROMETHEUS_POD_UNBUILT;

use super::version::Version;
use super::{
    GOVERNING_SERVICE, INPUT_HASH, MIN_RULE_CONFIG_MAPS, Settings, Source, Written, args,
    managed_by, pod, selector_labels, statefulset_name,
};

/// The operator's default Prometheus image, without its tag.
const DEFAULT_BASE_IMAGE: &str = "quay.io/prometheus/prometheus";

/// Refuses a Prometheus whose Pods cannot be built as it asks, naming the field.
pub fn check(prometheus: &Prometheus) -> Result<(), String> {
    let spec = &prometheus.spec;
    if let Some(field) = PROMETHEUS_POD_UNBUILT
        .iter()
        .find(|f| spec.unrendered.get(**f).is_some_and(|v| !v.is_null()))
    {
        return Err(format!(
            "spec.{field} is not built by promreload-reconciler yet; the Prometheus is refused \
             rather than run without it"
        ));
    }
    if let Some(web) = &spec.web
        && let Some(field) = web.unrendered.keys().next()
    {
        return Err(format!(
            "spec.web.{field} is not built by promreload-reconciler yet; the Prometheus is \
             refused rather than served without it"
        ));
    }
    if let Some(shards) = spec.shards.filter(|s| *s < 1) {
        return Err(format!("spec.shards must be at least 1, not {shards}"));
    }
    if let Some(replicas) = spec.replicas.filter(|r| *r < 0) {
        return Err(format!("spec.replicas must be 0 or more, not {replicas}"));
    }
    if let Some(storage) = &spec.storage {
        let sources = [
            ("emptyDir", storage.empty_dir.is_some()),
            ("ephemeral", storage.ephemeral.is_some()),
            (
                "volumeClaimTemplate",
                storage.volume_claim_template.is_some(),
            ),
        ];
        let set: Vec<&str> = sources.iter().filter(|s| s.1).map(|s| s.0).collect();
        if set.len() > 1 {
            return Err(format!(
                "spec.storage sets {}: one of emptyDir, ephemeral and volumeClaimTemplate at most",
                set.join(" and ")
            ));
        }
    }
    for (field, value, allowed) in [
        (
            "reloadStrategy",
            &spec.reload_strategy,
            &["HTTP", "ProcessSignal"][..],
        ),
        (
            "podManagementPolicy",
            &spec.pod_management_policy,
            &["OrderedReady", "Parallel"],
        ),
        (
            "dnsPolicy",
            &spec.dns_policy,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        ),
        (
            "logLevel",
            &spec.log_level,
            &["", "debug", "info", "warn", "error"],
        ),
        ("logFormat", &spec.log_format, &["", "logfmt", "json"]),
        (
            "imagePullPolicy",
            &spec.image_pull_policy,
            &["", "Always", "Never", "IfNotPresent"],
        ),
        (
            "shardRetentionPolicy.whenScaled",
            &spec
                .shard_retention_policy
                .as_ref()
                .and_then(|p| p.when_scaled.clone()),
            &["Delete", "Retain"],
        ),
    ] {
        if let Some(value) = value
            && !allowed.contains(&value.as_str())
        {
            return Err(format!(
                "spec.{field}: {value:?} is not one of {}",
                allowed.join(", ")
            ));
        }
    }
    for version in &spec.remote_write_receiver_message_versions {
        if !["V1.0", "V2.0"].contains(&version.as_str()) {
            return Err(format!(
                "spec.remoteWriteReceiverMessageVersions: {version:?} is not one of V1.0, V2.0"
            ));
        }
    }
    if spec
        .shard_retention_policy
        .as_ref()
        .is_some_and(|p| p.retain.is_some())
    {
        return Err(
            "spec.shardRetentionPolicy.retain is not built by promreload-reconciler yet; \
                    the Prometheus is refused rather than its shards kept for ever"
                .into(),
        );
    }
    if let Some(image) = spec
        .image
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        image_reference(image).map_err(|e| format!("spec.image: {e}"))?;
    }
    if let Some(base) = &spec.base_image {
        image_reference(base).map_err(|e| format!("spec.baseImage: {e}"))?;
    }
    for (i, c) in spec
        .containers
        .iter()
        .chain(&spec.init_containers)
        .enumerate()
    {
        if c.name.is_empty() {
            return Err(format!("spec.containers/initContainers[{i}] has no name"));
        }
    }
    Ok(())
}

/// Checks an image reference (`[registry[:port]/]path[:tag][@digest]`) as the container
/// runtime will parse it, so a typo is refused here instead of leaving Pods in
/// `InvalidImageName`.
pub fn image_reference(image: &str) -> Result<(), String> {
    use std::sync::OnceLock;
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        let component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
        let domain = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?)";
        let tag = r"[\w][\w.-]{0,127}";
        let digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
        regex::Regex::new(&format!(
            r"^(?:{domain}/)?{component}(?:/{component})*(?::{tag})?(?:@{digest})?$"
        ))
        .expect("valid regex")
    });
    if image.len() <= 255 && re.is_match(image) {
        Ok(())
    } else {
        Err(format!(
            "{image:?} is not an image reference such as quay.io/prometheus/prometheus:v3.14.0"
        ))
    }
}

/// The Prometheus image (`BuildImagePath`): `image` as it is, else the base image with its
/// own tag or digest, else with `sha`, `tag` or the version, in that order.
fn image(spec: &PrometheusSpec, version: &Version) -> String {
    if let Some(image) = spec.image.as_deref().filter(|i| !i.trim().is_empty()) {
        return image.to_string();
    }
    let base = spec
        .base_image
        .as_deref()
        .filter(|b| !b.is_empty())
        .unwrap_or(DEFAULT_BASE_IMAGE);
    let last = base.rsplit('/').next().unwrap_or(base);
    if last.contains(':') || base.contains('@') {
        return base.to_string();
    }
    match (spec.sha.as_deref(), spec.tag.as_deref()) {
        (Some(sha), _) if !sha.is_empty() => format!("{base}@sha256:{sha}"),
        (_, Some(tag)) if !tag.is_empty() => format!("{base}:{tag}"),
        _ => format!("{base}:v{version}"),
    }
}

/// The StatefulSet of `shard`.
pub fn build(
    prometheus: &Prometheus,
    settings: &Settings,
    source: Source,
    written: Written,
    version: &Version,
    shard: i32,
) -> Result<StatefulSet, String> {
    let spec = &prometheus.spec;
    let name = prometheus.name_any();
    let rule_config_maps: Vec<String> = (0..written.rule_config_maps.max(MIN_RULE_CONFIG_MAPS))
        .map(|i| format!("prometheus-{name}-rulefiles-{i}"))
        .collect();
    let tls_secrets: Vec<String> = (0..written.tls_shards.max(1))
        .map(|i| format!("prometheus-{name}-tls-assets-{i}"))
        .collect();
    let (mut volumes, mut mounts) =
        pod::volumes(prometheus, source, &rule_config_maps, &tls_secrets)?;
    let mut args = args::server(spec, version)?;
    if version.at_least(2, 24, 0) {
        let (volume, mount) = pod::web_config(prometheus);
        volumes.push(volume);
        mounts.push(mount);
    } else {
        args.retain(|a| !a.starts_with("--web.config.file="));
    }
    let prometheus_container = pod::prometheus_container(spec, image(spec, version), args, mounts);
    let reloader =
        |init| pod::reloader(prometheus, settings, source, init, shard, &rule_config_maps);
    let init_containers = pod::merge_containers(
        "spec.initContainers",
        vec![reloader(true)],
        &spec.init_containers,
    )?;
    let containers = pod::merge_containers(
        "spec.containers",
        vec![prometheus_container, reloader(false)],
        &spec.containers,
    )?;
    let selector = selector_labels(prometheus, Some(shard));
    let mut pod_labels =
        BTreeMap::from([("app.kubernetes.io/version".to_string(), version.to_string())]);
    let mut pod_annotations = BTreeMap::from([(
        "kubectl.kubernetes.io/default-container".to_string(),
        "prometheus".to_string(),
    )]);
    if let Some(meta) = &spec.pod_metadata {
        pod_labels.extend(meta.labels.clone());
        pod_annotations.extend(meta.annotations.clone());
    }
    pod_labels.extend(selector.clone());
    let (data_volume, claim) = storage(prometheus);
    volumes.extend(data_volume);
    volumes.extend(spec.volumes.iter().cloned());
    let host_network = spec.host_network == Some(true);
    let dns_policy = spec
        .dns_policy
        .clone()
        .or_else(|| host_network.then(|| "ClusterFirstWithHostNet".into()));
    let pod_spec = PodSpec {
        share_process_namespace: Some(args::by_signal(spec)),
        containers,
        init_containers: Some(init_containers),
        security_context: spec.security_context.clone(),
        service_account_name: spec.service_account_name.clone().filter(|s| !s.is_empty()),
        automount_service_account_token: Some(spec.automount_service_account_token.unwrap_or(true)),
        node_selector: spec.node_selector.clone().filter(|n| !n.is_empty()),
        scheduler_name: spec.scheduler_name.clone().filter(|s| !s.is_empty()),
        priority_class_name: spec.priority_class_name.clone().filter(|s| !s.is_empty()),
        termination_grace_period_seconds: Some(
            spec.termination_grace_period_seconds.unwrap_or(600),
        ),
        volumes: Some(volumes),
        tolerations: non_empty(spec.tolerations.clone()),
        affinity: spec.affinity.clone(),
        topology_spread_constraints: non_empty(topology_spread(spec, &selector)),
        host_aliases: non_empty(spec.host_aliases.clone()),
        host_network: host_network.then_some(true),
        enable_service_links: spec.enable_service_links,
        host_users: spec.host_users,
        dns_policy,
        dns_config: spec.dns_config.clone(),
        image_pull_secrets: non_empty(spec.image_pull_secrets.clone()),
        ..PodSpec::default()
    };
    let update_strategy = match &spec.update_strategy {
        None => StatefulSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            ..StatefulSetUpdateStrategy::default()
        },
        Some(s) => StatefulSetUpdateStrategy {
            type_: Some(s.type_.clone()),
            rolling_update: s
                .rolling_update
                .as_ref()
                .map(|r| RollingUpdateStatefulSetStrategy {
                    max_unavailable: r.max_unavailable.clone(),
                    ..RollingUpdateStatefulSetStrategy::default()
                }),
        },
    };
    let statefulset_spec = StatefulSetSpec {
        service_name: Some(
            spec.service_name
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| GOVERNING_SERVICE.into()),
        ),
        replicas: Some(spec.replicas.unwrap_or(1)),
        pod_management_policy: Some(
            spec.pod_management_policy
                .clone()
                .unwrap_or_else(|| "Parallel".into()),
        ),
        update_strategy: Some(update_strategy),
        min_ready_seconds: spec.min_ready_seconds.filter(|s| *s != 0),
        selector: LabelSelector {
            match_labels: Some(selector.clone()),
            ..LabelSelector::default()
        },
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(pod_labels),
                annotations: Some(pod_annotations),
                ..ObjectMeta::default()
            }),
            spec: Some(pod_spec),
        },
        volume_claim_templates: claim.map(|c| vec![c]),
        persistent_volume_claim_retention_policy: spec
            .persistent_volume_claim_retention_policy
            .clone(),
        ..StatefulSetSpec::default()
    };
    let mut labels = managed_by();
    labels.extend(prometheus.labels().clone());
    labels.insert("operator.prometheus.io/mode".into(), "server".into());
    labels.extend(selector);
    let annotations: BTreeMap<String, String> = prometheus
        .annotations()
        .iter()
        .filter(|(k, _)| !k.starts_with("kubectl.kubernetes.io/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut statefulset = StatefulSet {
        metadata: ObjectMeta {
            name: Some(statefulset_name(prometheus, shard)),
            namespace: prometheus.namespace(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: secret::owner(prometheus).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: Some(statefulset_spec),
        ..StatefulSet::default()
    };
    let hash = input_hash(&statefulset);
    statefulset
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(INPUT_HASH.into(), hash);
    Ok(statefulset)
}

/// A hash of everything the StatefulSet is built from (the object itself, without this
/// annotation): equal hashes mean nothing to write.
fn input_hash(statefulset: &StatefulSet) -> String {
    let json = serde_json::to_vec(statefulset).expect("a StatefulSet serializes");
    let digest = Sha256::digest(json);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first).to_string()
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

/// The topology spread constraints, with the selector labels added to those that ask for
/// them (`additionalLabelSelectors`: `OnResource` leaves the shard out).
fn topology_spread(
    spec: &PrometheusSpec,
    selector: &BTreeMap<String, String>,
) -> Vec<k8s_openapi::api::core::v1::TopologySpreadConstraint> {
    spec.topology_spread_constraints
        .iter()
        .map(|tsc| {
            let mut core = tsc.core.clone();
            let Some(additional) = &tsc.additional_label_selectors else {
                return core;
            };
            let labels = core
                .label_selector
                .get_or_insert_default()
                .match_labels
                .get_or_insert_default();
            for (k, v) in selector {
                if additional == "OnResource" && k == "operator.prometheus.io/shard" {
                    continue;
                }
                labels.insert(k.clone(), v.clone());
            }
            core
        })
        .collect()
}

/// The data volume (emptyDir or ephemeral) or the claim template.
fn storage(prometheus: &Prometheus) -> (Option<Volume>, Option<PersistentVolumeClaim>) {
    let name = pod::data_volume_name(prometheus);
    let volume = |v: Volume| Volume {
        name: name.clone(),
        ..v
    };
    let Some(storage) = &prometheus.spec.storage else {
        return (
            Some(volume(Volume {
                empty_dir: Some(Default::default()),
                ..Volume::default()
            })),
            None,
        );
    };
    if let Some(empty_dir) = &storage.empty_dir {
        return (
            Some(volume(Volume {
                empty_dir: Some(empty_dir.clone()),
                ..Volume::default()
            })),
            None,
        );
    }
    if let Some(ephemeral) = &storage.ephemeral {
        return (
            Some(volume(Volume {
                ephemeral: Some(ephemeral.clone()),
                ..Volume::default()
            })),
            None,
        );
    }
    let Some(template) = &storage.volume_claim_template else {
        return (
            Some(volume(Volume {
                empty_dir: Some(Default::default()),
                ..Volume::default()
            })),
            None,
        );
    };
    let meta = template.metadata.clone().unwrap_or_default();
    let mut claim_spec: PersistentVolumeClaimSpec = template.spec.clone().unwrap_or_default();
    if claim_spec.access_modes.is_none() {
        claim_spec.access_modes = Some(vec!["ReadWriteOnce".into()]);
    }
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name),
            labels: (!meta.labels.is_empty()).then_some(meta.labels),
            annotations: (!meta.annotations.is_empty()).then_some(meta.annotations),
            ..ObjectMeta::default()
        },
        spec: Some(claim_spec),
        status: template.status.clone(),
    };
    (None, Some(claim))
}
