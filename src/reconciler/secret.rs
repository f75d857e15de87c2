//! The Secrets and ConfigMaps of a Prometheus, owned by it and written by server-side apply
//! only when their content, labels or owner changed:
//!
//! - the config, `prometheus-<name>`, key `prometheus.yaml.gz`, deterministic gzip (zero
//!   mtime, no file name);
//! - the TLS assets, `prometheus-<name>-tls-assets-<i>`, as prometheus-operator shards them:
//!   files in name order, a new Secret when one would pass [`MAX_SHARD_BYTES`], and the
//!   shards no longer needed deleted. The first one always exists (the Pod mounts it);
//! - the rule files, ConfigMaps `prometheus-<name>-rulefiles-<i>` (see `rules`), sharded and
//!   pruned the same way.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::{Compression, GzBuilder};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};

use super::crd::Prometheus;
use super::http::TlsAssets;
use super::rules::{self, RuleFiles};

/// The Secret's only key.
pub const KEY: &str = "prometheus.yaml.gz";
/// The field manager of every write.
pub const MANAGER: &str = "promreload-reconciler";

/// Name of the config Secret of a Prometheus.
pub fn name(prometheus: &Prometheus) -> String {
    format!("prometheus-{}", prometheus.name_any())
}

/// Gzip with a fixed header, so the same config always gives the same bytes.
pub fn gzip(config: &str) -> Vec<u8> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::default());
    encoder
        .write_all(config.as_bytes())
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// The desired Secret for `prometheus` holding `config`.
pub fn desired(prometheus: &Prometheus, config: &str) -> Secret {
    let data = BTreeMap::from([(KEY.to_string(), ByteString(gzip(config)))]);
    object(prometheus, name(prometheus), data)
}

/// Keys and values of one TLS-assets Secret may take this many bytes (the API's 1 MiB
/// limit less the operator's 50 kB margin).
pub const MAX_SHARD_BYTES: usize = 1024 * 1024 - 50_000;

/// Name of the `index`th TLS-assets Secret of a Prometheus.
pub fn tls_assets_name(prometheus: &Prometheus, index: usize) -> String {
    format!("prometheus-{}-tls-assets-{index}", prometheus.name_any())
}

/// The TLS assets split into Secrets' data, as the operator splits them (always one, maybe
/// empty).
pub fn tls_shards(assets: &TlsAssets) -> Vec<BTreeMap<String, ByteString>> {
    let mut shards = vec![BTreeMap::new()];
    let mut size = 0;
    for (key, value) in assets {
        let bytes = key.len() + value.len();
        if size + bytes > MAX_SHARD_BYTES && size > 0 {
            shards.push(BTreeMap::new());
            size = 0;
        }
        size += bytes;
        let shard = shards.last_mut().expect("never empty");
        shard.insert(key.clone(), ByteString(value.as_bytes().to_vec()));
    }
    shards
}

/// Applies the TLS-assets Secrets that changed and deletes the shards no longer needed;
/// returns whether it wrote, and how many shards there are now. `known`: the shard count
/// this process last left, when it knows it: surplus shards are only looked for when it
/// does not, or when the count fell.
pub async fn apply_tls_assets(
    client: &Client,
    prometheus: &Prometheus,
    assets: &TlsAssets,
    known: Option<usize>,
) -> kube::Result<(bool, usize)> {
    let namespace = prometheus.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let wants = tls_shards(assets)
        .into_iter()
        .enumerate()
        .map(|(i, data)| object(prometheus, tls_assets_name(prometheus, i), data))
        .collect();
    apply_shards(&api, wants, |i| tls_assets_name(prometheus, i), known).await
}

/// Applies the rule-file ConfigMaps `prometheus-<name>-rulefiles-<i>` that changed and
/// deletes the ones no longer needed (after the others are written, so no rule is ever
/// missing); returns whether it wrote, and how many there are now.
pub async fn apply_rule_files(
    client: &Client,
    prometheus: &Prometheus,
    rules: &RuleFiles,
    known: Option<usize>,
) -> kube::Result<(bool, usize)> {
    let namespace = prometheus.namespace().unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let wants = rules
        .config_maps()
        .into_iter()
        .enumerate()
        .map(|(i, data)| {
            let mut metadata = metadata(prometheus, rules::config_map_name(prometheus, i));
            // The operator's selector label for these ConfigMaps.
            let labels = metadata.labels.get_or_insert_default();
            labels.insert(rules::NAME_LABEL.into(), prometheus.name_any());
            let data = data
                .into_iter()
                .map(|(name, content)| (name.to_string(), content.to_string()))
                .collect();
            ConfigMap {
                metadata,
                data: Some(data),
                ..ConfigMap::default()
            }
        })
        .collect();
    apply_shards(
        &api,
        wants,
        |i| rules::config_map_name(prometheus, i),
        known,
    )
    .await
}

/// Applies `wants` (objects `name_at(0..)`) and deletes the surplus ones from `name_at(len)`
/// on. Surplus objects are only looked for when `known` (the count this process last left)
/// is unknown or larger: each look is an API call on every reconcile otherwise.
async fn apply_shards<K: Stored>(
    api: &Api<K>,
    wants: Vec<K>,
    name_at: impl Fn(usize) -> String,
    known: Option<usize>,
) -> kube::Result<(bool, usize)> {
    let count = wants.len();
    let mut wrote = false;
    for want in &wants {
        wrote |= apply_object(api, want).await?;
    }
    if known.is_some_and(|k| k <= count) {
        return Ok((wrote, count));
    }
    for i in count.. {
        match api.delete(&name_at(i), &Default::default()).await {
            Ok(_) => wrote = true,
            Err(kube::Error::Api(e)) if e.code == 404 => break,
            Err(e) => return Err(e),
        }
    }
    Ok((wrote, count))
}

/// A Secret of `prometheus`: labelled, owned, holding `data`.
fn object(prometheus: &Prometheus, name: String, data: BTreeMap<String, ByteString>) -> Secret {
    Secret {
        metadata: metadata(prometheus, name),
        data: Some(data),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

/// The metadata of an object of `prometheus`: named, labelled, owned.
fn metadata(prometheus: &Prometheus, name: String) -> ObjectMeta {
    let labels = BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_string(),
            MANAGER.to_string(),
        ),
        (
            "operator.prometheus.io/name".to_string(),
            prometheus.name_any(),
        ),
    ]);
    ObjectMeta {
        name: Some(name),
        namespace: prometheus.namespace(),
        labels: Some(labels),
        owner_references: owner(prometheus).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

/// A controller owner reference to `prometheus` that blocks its deletion until the object
/// is gone (every object generated for a Prometheus carries one).
pub fn owner(prometheus: &Prometheus) -> Option<OwnerReference> {
    let mut owner = prometheus.controller_owner_ref(&())?;
    owner.block_owner_deletion = Some(true);
    Some(owner)
}

/// A kind of object this module writes: it knows whether two hold the same data.
pub trait Stored:
    Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::Serialize
    + serde::de::DeserializeOwned
{
    /// Whether both hold the same data (the API server leaves out an empty `data`).
    fn same_data(&self, other: &Self) -> bool;
}

impl Stored for Secret {
    fn same_data(&self, other: &Self) -> bool {
        let data = |s: &Self| s.data.clone().unwrap_or_default();
        data(self) == data(other)
    }
}

impl Stored for ConfigMap {
    fn same_data(&self, other: &Self) -> bool {
        let data = |c: &Self| c.data.clone().unwrap_or_default();
        data(self) == data(other)
    }
}

/// Whether `current` already holds what `desired` says (data, labels, owner).
pub fn up_to_date<K: Stored>(current: &K, desired: &K) -> bool {
    let labels_present = desired
        .labels()
        .iter()
        .all(|(k, v)| current.labels().get(k) == Some(v));
    current.same_data(desired)
        && labels_present
        && current.meta().owner_references == desired.meta().owner_references
}

/// For an unmanaged Prometheus: creates the Secret with an empty config if it does not exist,
/// and never touches an existing one (its content is the user's). Returns whether it wrote.
pub async fn create_if_missing(client: &Client, prometheus: &Prometheus) -> kube::Result<bool> {
    let namespace = prometheus.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    if api.get_opt(&name(prometheus)).await?.is_some() {
        return Ok(false);
    }
    match api
        .create(&PostParams::default(), &desired(prometheus, ""))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Applies the config Secret if it changed; returns whether it wrote.
pub async fn apply(client: &Client, prometheus: &Prometheus, config: &str) -> kube::Result<bool> {
    let namespace = prometheus.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    apply_object(&api, &desired(prometheus, config)).await
}

/// Applies `want` if the stored object differs; returns whether it wrote.
async fn apply_object<K: Stored>(api: &Api<K>, want: &K) -> kube::Result<bool> {
    let name = want.name_any();
    if let Some(current) = api.get_opt(&name).await?
        && up_to_date(&current, want)
    {
        return Ok(false);
    }
    let params = PatchParams::apply(MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(want)).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciler::fake_api::FakeApi;
    use std::io::Read;

    #[test]
    fn gzip_is_deterministic_and_round_trips() {
        let a = gzip("global: {}\n");
        assert_eq!(a, gzip("global: {}\n"));
        assert_eq!(&a[4..8], &[0, 0, 0, 0], "zero mtime");
        let mut out = String::new();
        flate2::read::GzDecoder::new(&a[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "global: {}\n");
    }

    #[test]
    fn desired_secret_is_owned_and_labelled() {
        let mut p = Prometheus::new("k8s", Default::default());
        p.metadata.namespace = Some("monitoring".into());
        p.metadata.uid = Some("uid-1".into());
        let s = desired(&p, "x");
        assert_eq!(s.name_any(), "prometheus-k8s");
        let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Prometheus", "uid-1")
        );
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        assert!(up_to_date(&s, &desired(&p, "x")));
        assert!(!up_to_date(&s, &desired(&p, "y")));
        let empty = object(&p, tls_assets_name(&p, 0), BTreeMap::new());
        let mut stored = empty.clone();
        stored.data = None;
        assert!(
            up_to_date(&stored, &empty),
            "an empty data is left out when stored"
        );
    }

    #[test]
    fn tls_assets_are_sharded_like_the_operators() {
        assert_eq!(tls_shards(&TlsAssets::new()), vec![BTreeMap::new()]);
        let big = "x".repeat(400_000);
        let assets: TlsAssets = (0..5)
            .map(|i| (format!("0_ns_s_{i}"), big.clone()))
            .collect();
        let shards = tls_shards(&assets);
        let keys: Vec<Vec<&String>> = shards.iter().map(|s| s.keys().collect()).collect();
        assert_eq!(
            keys,
            [
                vec!["0_ns_s_0", "0_ns_s_1"],
                vec!["0_ns_s_2", "0_ns_s_3"],
                vec!["0_ns_s_4"]
            ]
        );
        for shard in &shards {
            let bytes: usize = shard.iter().map(|(k, v)| k.len() + v.0.len()).sum();
            assert!(bytes <= MAX_SHARD_BYTES);
        }
    }

    fn k8s() -> Prometheus {
        let mut p = Prometheus::new("k8s", Default::default());
        p.metadata.namespace = Some("monitoring".into());
        p.metadata.uid = Some("uid-1".into());
        p
    }

    const SECRET_PATH: &str = "/api/v1/namespaces/monitoring/secrets/prometheus-k8s";

    #[tokio::test]
    async fn an_absent_secret_is_written_by_server_side_apply_as_the_reconciler() {
        let api = FakeApi::new();
        assert!(apply(&api.client(), &k8s(), "global: {}\n").await.unwrap());
        let sent = api.sent();
        assert_eq!(api.writes(), [format!("PATCH {SECRET_PATH}")]);
        let patch = &sent[1];
        assert!(
            patch.query.contains(&format!("fieldManager={MANAGER}"))
                && patch.query.contains("force=true"),
            "{}",
            patch.query
        );
        assert_eq!(patch.content_type, "application/apply-patch+yaml");
        let sent: Secret = serde_json::from_str(&patch.body).unwrap();
        let want = desired(&k8s(), "global: {}\n");
        assert!(up_to_date(&sent, &want), "the patch is the desired Secret");
    }

    #[tokio::test]
    async fn an_up_to_date_secret_is_not_written() {
        let api = FakeApi::new();
        api.insert(SECRET_PATH, desired(&k8s(), "global: {}\n"));
        assert!(!apply(&api.client(), &k8s(), "global: {}\n").await.unwrap());
        assert_eq!(api.sent().len(), 1, "a GET and no write");
    }

    #[tokio::test]
    async fn a_refused_write_is_the_api_servers_error() {
        let api = FakeApi::new();
        api.fail("PATCH", SECRET_PATH, 403, "Forbidden");
        match apply(&api.client(), &k8s(), "global: {}\n").await {
            Err(kube::Error::Api(e)) => assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden")),
            other => panic!("expected the 403, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_unmanaged_secret_created_meanwhile_by_someone_else_is_left_alone() {
        // The user (or another reconciler) created it between our GET and our POST.
        let api = FakeApi::new();
        api.fail(
            "POST",
            "/api/v1/namespaces/monitoring/secrets",
            409,
            "AlreadyExists",
        );
        assert!(!create_if_missing(&api.client(), &k8s()).await.unwrap());
        assert_eq!(api.sent().len(), 2, "no retry, no overwrite");
    }
}
