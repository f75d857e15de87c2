//! The config Secret: `prometheus-<name>`, key `prometheus.yaml.gz`, deterministic gzip (zero
//! mtime, no file name), owned by its Prometheus, written by server-side apply only when its
//! content, labels or owner changed.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::{Compression, GzBuilder};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};

use super::crd::Prometheus;

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
    Secret {
        metadata: ObjectMeta {
            name: Some(name(prometheus)),
            namespace: prometheus.namespace(),
            labels: Some(labels),
            owner_references: owner(prometheus).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            KEY.to_string(),
            ByteString(gzip(config)),
        )])),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

fn owner(prometheus: &Prometheus) -> Option<OwnerReference> {
    let mut owner = prometheus.controller_owner_ref(&())?;
    owner.block_owner_deletion = Some(true);
    Some(owner)
}

/// Whether `current` already holds what `desired` says (data, labels, owner).
pub fn up_to_date(current: &Secret, desired: &Secret) -> bool {
    let labels_present = desired
        .labels()
        .iter()
        .all(|(k, v)| current.labels().get(k) == Some(v));
    current.data == desired.data
        && labels_present
        && current.metadata.owner_references == desired.metadata.owner_references
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

/// Applies the Secret if it changed; returns whether it wrote.
pub async fn apply(client: &Client, prometheus: &Prometheus, config: &str) -> kube::Result<bool> {
    let namespace = prometheus.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let want = desired(prometheus, config);
    if let Some(current) = api.get_opt(&name(prometheus)).await?
        && up_to_date(&current, &want)
    {
        return Ok(false);
    }
    let params = PatchParams::apply(MANAGER).force();
    api.patch(&name(prometheus), &params, &Patch::Apply(&want))
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
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
    }
}
