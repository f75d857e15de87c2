//! The objects that run a Prometheus, built as prometheus-operator v0.94.1 builds them
//! (`pkg/prometheus/server/statefulset.go`, `pkg/prometheus/common.go`): a StatefulSet per
//! shard, the governing Service `prometheus-operated`, and the web-config Secret, with
//! promreload as the config reloader (it takes the Go reloader's flags). The objects are
//! the operator's to the label, so a Prometheus can move between the operator and this
//! reconciler without its StatefulSets' immutable selectors changing.
//!
//! [`build`] checks the fields that shape the Pods and builds the objects, or says which
//! field refuses the Prometheus; nothing is written then, and running Pods are left as
//! they are. [`apply`] writes them.

mod apply;
mod args;
mod pod;
mod service;
mod statefulset;
mod status;
mod version;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ResourceRequirements, Secret, Service};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;

use super::crd::Prometheus;

pub use apply::{Applied, ApplyError, apply};
pub use statefulset::image_reference;
pub use status::{Observed, observe};
pub use version::Version;

/// The config Secret's mount.
pub const CONFIG_DIR: &str = "/etc/prometheus/config";
/// The rendered config's directory (a memory emptyDir).
pub const CONFIG_OUT_DIR: &str = "/etc/prometheus/config_out";
/// The config Secret's key.
pub const CONFIG_FILE_GZ: &str = "prometheus.yaml.gz";
/// The rendered config's file name.
pub const ENVSUBST_FILE: &str = "prometheus.env.yaml";
/// The web config file.
pub const WEB_CONFIG_FILE: &str = "/etc/prometheus/web_config/web-config.yaml";
/// The TLS assets' mount.
pub const TLS_ASSETS_DIR: &str = "/etc/prometheus/certs";
/// Where rule ConfigMaps are mounted, one directory each.
pub const RULES_DIR: &str = "/etc/prometheus/rules";
/// The TSDB's directory.
pub const STORAGE_DIR: &str = "/prometheus";
/// Where bare log file names go.
pub const LOG_DIR: &str = "/var/log/prometheus";
/// The retention when none is set.
pub const DEFAULT_RETENTION: &str = "24h";
/// Rule ConfigMap volumes are mounted for at least this many (optional) ConfigMaps, so a
/// growing rule set does not roll the Pods (the operator's `AppendConfigMapNames`).
pub const MIN_RULE_CONFIG_MAPS: usize = 3;
/// The governing Service of Prometheus Pods.
pub const GOVERNING_SERVICE: &str = "prometheus-operated";
/// The StatefulSet annotation holding a hash of what it was built from.
pub const INPUT_HASH: &str = "prometheus-operator-input-hash";

/// Where the config reloader reads the config Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// From the Kubernetes API (`--config-secret`): a change is live as soon as the API server
    /// has it. The Pod needs its service-account token, and a Role to read that one Secret
    /// (the reconciler creates it).
    Api,
    /// From the Secret mounted as a volume, as the operator's Pods read it: a change waits for
    /// the kubelet's sync of the Pod (a minute by default).
    Volume,
}

/// The annotation that chooses a Prometheus's reloader source (`api` or `volume`) over the
/// reconciler's setting.
pub const SOURCE_ANNOTATION: &str = "promreload.io/reloader-source";

impl Source {
    /// The source of `prometheus`: its annotation, else `default`.
    pub fn of(prometheus: &Prometheus, default: Source) -> Result<Source, String> {
        match prometheus
            .annotations()
            .get(SOURCE_ANNOTATION)
            .map(String::as_str)
        {
            None => Ok(default),
            Some("api") => Ok(Source::Api),
            Some("volume") => Ok(Source::Volume),
            Some(other) => Err(format!(
                "metadata.annotations[{SOURCE_ANNOTATION}]: {other:?} is not api or volume"
            )),
        }
    }
}

/// How the reconciler builds the Pods of every Prometheus.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where reloaders read the config Secret, unless a Prometheus's annotation says.
    pub source: Source,
    /// The config reloader's image (promreload's).
    pub reloader_image: String,
    /// The config reloader's resources (the operator's defaults: 10m CPU and 50Mi memory,
    /// requested and limited).
    pub reloader_resources: ResourceRequirements,
}

impl Settings {
    /// The settings with the operator's reloader resources.
    pub fn new(source: Source, reloader_image: String) -> Self {
        let both = |cpu: &str, memory: &str| {
            Some(BTreeMap::from([
                ("cpu".to_string(), Quantity(cpu.into())),
                ("memory".to_string(), Quantity(memory.into())),
            ]))
        };
        Self {
            source,
            reloader_image,
            reloader_resources: ResourceRequirements {
                limits: both("10m", "50Mi"),
                requests: both("10m", "50Mi"),
                ..ResourceRequirements::default()
            },
        }
    }
}

/// What a Prometheus's Pods need besides its spec: the Secrets and ConfigMaps the config
/// step wrote.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    /// TLS-assets Secrets (`prometheus-<name>-tls-assets-<i>`), at least 1.
    pub tls_shards: usize,
    /// Rule-file ConfigMaps (`prometheus-<name>-rulefiles-<i>`).
    pub rule_config_maps: usize,
}

/// The objects that run one Prometheus.
#[derive(Debug, Clone)]
pub struct Workload {
    /// One per shard, in shard order.
    pub statefulsets: Vec<StatefulSet>,
    /// The governing Service, unless the Prometheus names its own (`serviceName`).
    pub service: Option<Service>,
    /// `prometheus-<name>-web-config`.
    pub web_config: Secret,
    /// In API mode, the Role that lets the Pods read the config Secret, and its binding to
    /// their service account.
    pub config_reader: Option<(Role, RoleBinding)>,
}

/// The StatefulSets, Service and web-config Secret of `prometheus`, or the field that
/// refuses it (`spec.<field>: why`).
pub fn build(
    prometheus: &Prometheus,
    settings: &Settings,
    written: Written,
) -> Result<Workload, String> {
    statefulset::check(prometheus)?;
    let version = Version::of(prometheus.spec.version.as_deref())?;
    let source = Source::of(prometheus, settings.source)?;
    if source == Source::Api && prometheus.spec.automount_service_account_token == Some(false) {
        return Err(format!(
            "spec.automountServiceAccountToken is false: the config reloader reads its Secret \
             from the API with that token; set it true, or annotate the Prometheus \
             {SOURCE_ANNOTATION}: volume"
        ));
    }
    let statefulsets = (0..shards(prometheus))
        .map(|shard| statefulset::build(prometheus, settings, source, written, &version, shard))
        .collect::<Result<_, _>>()?;
    Ok(Workload {
        statefulsets,
        service: service::governing(prometheus),
        web_config: service::web_config(prometheus)?,
        config_reader: (source == Source::Api).then(|| service::config_reader(prometheus)),
    })
}

/// The number of shards (`shards` below 2 is 1).
pub fn shards(prometheus: &Prometheus) -> i32 {
    prometheus.spec.shards.unwrap_or(1).max(1)
}

/// The StatefulSet of `shard`: `prometheus-<name>`, then `prometheus-<name>-shard-<n>`.
pub fn statefulset_name(prometheus: &Prometheus, shard: i32) -> String {
    match shard {
        0 => format!("prometheus-{}", prometheus.name_any()),
        n => format!("prometheus-{}-shard-{n}", prometheus.name_any()),
    }
}

/// `prometheus-<name>-web-config`.
pub fn web_config_secret_name(prometheus: &Prometheus) -> String {
    format!("prometheus-{}-web-config", prometheus.name_any())
}

/// The operator's label naming who manages an object (and its `app.kubernetes.io` twin).
const MANAGED_BY: [(&str, &str); 2] = [
    ("managed-by", "prometheus-operator"),
    ("app.kubernetes.io/managed-by", "prometheus-operator"),
];

/// The labels that select the Pods of a Prometheus's shard, as the operator sets them
/// (immutable in a StatefulSet, so kept to the letter).
pub fn selector_labels(prometheus: &Prometheus, shard: Option<i32>) -> BTreeMap<String, String> {
    let name = prometheus.name_any();
    let mut labels = BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "prometheus".to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "prometheus-operator".to_string(),
        ),
        ("app.kubernetes.io/instance".to_string(), name.clone()),
        ("prometheus".to_string(), name.clone()),
        ("operator.prometheus.io/name".to_string(), name),
    ]);
    if let Some(shard) = shard {
        labels.insert("operator.prometheus.io/shard".into(), shard.to_string());
    }
    labels
}

fn managed_by() -> BTreeMap<String, String> {
    MANAGED_BY
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests;
