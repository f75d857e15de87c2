use super::*;

fn prometheus(yaml: &str) -> Prometheus {
    let mut p: Prometheus = serde_yaml_ng::from_str(&format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {{name: k8s, namespace: mon, uid: u1}}\nspec: {yaml}\n"
    ))
    .unwrap();
    p.metadata.labels.get_or_insert_default();
    p
}

fn settings() -> Settings {
    Settings::new(Source::Volume, "promreload:test".into())
}

const WRITTEN: Written = Written {
    tls_shards: 1,
    rule_config_maps: 0,
};

fn refusal(yaml: &str) -> String {
    build(&prometheus(yaml), &settings(), WRITTEN).unwrap_err()
}

#[test]
fn a_default_prometheus_gets_the_operators_objects() {
    let w = build(&prometheus("{}"), &settings(), WRITTEN).unwrap();
    assert_eq!(w.statefulsets.len(), 1);
    let sts = &w.statefulsets[0];
    assert_eq!(sts.name_any(), "prometheus-k8s");
    let spec = sts.spec.as_ref().unwrap();
    assert_eq!(spec.service_name.as_deref(), Some("prometheus-operated"));
    let pod = spec.template.spec.as_ref().unwrap();
    let names: Vec<_> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["prometheus", "config-reloader"]);
    let volumes: Vec<_> = pod
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(
        volumes,
        [
            "config",
            "tls-assets",
            "config-out",
            "prometheus-k8s-rulefiles-0",
            "prometheus-k8s-rulefiles-1",
            "prometheus-k8s-rulefiles-2",
            "web-config",
            "prometheus-k8s-db"
        ]
    );
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("quay.io/prometheus/prometheus:v3.14.0")
    );
    assert_eq!(pod.containers[1].image.as_deref(), Some("promreload:test"));
    assert!(sts.annotations().contains_key(INPUT_HASH));
    assert_eq!(w.service.unwrap().name_any(), "prometheus-operated");
    assert_eq!(w.web_config.data.unwrap()["web-config.yaml"].0, b"");
}

#[test]
fn shards_get_a_statefulset_each() {
    let w = build(&prometheus("{shards: 3}"), &settings(), WRITTEN).unwrap();
    let names: Vec<_> = w.statefulsets.iter().map(|s| s.name_any()).collect();
    assert_eq!(
        names,
        [
            "prometheus-k8s",
            "prometheus-k8s-shard-1",
            "prometheus-k8s-shard-2"
        ]
    );
    let shard = |s: &StatefulSet| s.labels()["operator.prometheus.io/shard"].clone();
    assert_eq!(shard(&w.statefulsets[2]), "2");
}

#[test]
fn the_input_hash_follows_the_inputs() {
    let hash = |yaml| {
        let w = build(&prometheus(yaml), &settings(), WRITTEN).unwrap();
        w.statefulsets[0].annotations()[INPUT_HASH].clone()
    };
    assert_eq!(hash("{}"), hash("{}"));
    assert_ne!(hash("{}"), hash("{replicas: 2}"));
}

#[test]
fn pods_that_cannot_run_are_refused_naming_the_field() {
    for (yaml, expected) in [
        ("{shards: 0}", "spec.shards must be at least 1"),
        ("{replicas: -1}", "spec.replicas must be 0 or more"),
        (
            "{storage: {emptyDir: {}, volumeClaimTemplate: {spec: {}}}}",
            "spec.storage sets emptyDir and volumeClaimTemplate",
        ),
        (
            "{image: 'quay.io/prometheus/prometheus:v3 .1'}",
            "spec.image: ",
        ),
        ("{image: 'Quay.io/Prometheus'}", "spec.image: "),
        ("{baseImage: 'a b'}", "spec.baseImage: "),
        ("{version: latest}", "spec.version: "),
        ("{thanos: {version: v0.40.0}}", "spec.thanos is not built"),
        (
            "{web: {tlsConfig: {keySecret: {name: a, key: b}}}}",
            "spec.web.tlsConfig is not built",
        ),
        (
            "{reloadStrategy: Signal}",
            "spec.reloadStrategy: \"Signal\" is not one of",
        ),
        ("{dnsPolicy: Host}", "spec.dnsPolicy"),
        (
            "{additionalArgs: [{name: storage.tsdb.path, value: /x}]}",
            "spec.additionalArgs: ",
        ),
        (
            "{secrets: [xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-y]}",
            "spec.secrets: ",
        ),
        (
            "{shardRetentionPolicy: {whenScaled: Retain, retain: {retentionPeriod: 1d}}}",
            "spec.shardRetentionPolicy.retain",
        ),
        (
            "{web: {httpConfig: {headers: {xFrameOptions: Allow}}}}",
            "spec.web.httpConfig.headers: X-Frame-Options",
        ),
    ] {
        let e = refusal(yaml);
        assert!(e.starts_with(expected), "{yaml}: {e}");
    }
}

#[test]
fn image_references_are_checked_as_the_runtime_reads_them() {
    for ok in [
        "prom/prometheus",
        "quay.io/prometheus/prometheus:v3.14.0",
        "localhost:5000/a/b_c:1",
        "registry.example.com/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ] {
        statefulset::image_reference(ok).unwrap();
    }
    for bad in ["", "a b", "upper/Case", "x:", "x@sha256:12", ":tag"] {
        assert!(statefulset::image_reference(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_image_comes_from_image_base_image_sha_tag_or_version() {
    let image = |yaml| {
        let w = build(&prometheus(yaml), &settings(), WRITTEN).unwrap();
        let pod = w.statefulsets[0]
            .spec
            .clone()
            .unwrap()
            .template
            .spec
            .unwrap();
        pod.containers[0].image.clone().unwrap()
    };
    assert_eq!(image("{image: 'my/prom:1'}"), "my/prom:1");
    assert_eq!(
        image("{version: v2.55}"),
        "quay.io/prometheus/prometheus:v2.55.0"
    );
    assert_eq!(image("{baseImage: my/prom, tag: t}"), "my/prom:t");
    assert_eq!(
        image("{baseImage: my/prom, tag: t, sha: abc}"),
        "my/prom@sha256:abc"
    );
    assert_eq!(
        image("{baseImage: 'reg:5000/my/prom:9', tag: t}"),
        "reg:5000/my/prom:9"
    );
}

#[test]
fn web_http_config_is_the_web_config_file() {
    let w = build(
        &prometheus("{web: {httpConfig: {http2: false, headers: {xFrameOptions: Deny, contentSecurityPolicy: none}}}}"),
        &settings(),
        WRITTEN,
    )
    .unwrap();
    let text = String::from_utf8(w.web_config.data.unwrap()["web-config.yaml"].0.clone()).unwrap();
    assert_eq!(
        text,
        "http_server_config:\n  http2: false\n  headers:\n    Content-Security-Policy: none\n    X-Frame-Options: deny\n"
    );
}

/// API mode differs from the operator's layout (volume mode) in exactly what the README
/// lists: no `config` volume nor its mounts in the reloaders, `--config-secret` instead of
/// `--config-file` and the config directory's `--watched-dir`, and a Role and RoleBinding.
#[test]
fn api_mode_differs_from_the_operators_layout_in_the_listed_ways_only() {
    let p = prometheus("{serviceAccountName: prom, shards: 2}");
    let volume = build(&p, &settings(), WRITTEN).unwrap();
    let api = build(
        &p,
        &Settings::new(Source::Api, "promreload:test".into()),
        WRITTEN,
    )
    .unwrap();
    assert!(volume.config_reader.is_none());
    for (mut expected, mut got) in volume.statefulsets.into_iter().zip(api.statefulsets) {
        for s in [&mut expected, &mut got] {
            s.metadata.annotations.as_mut().unwrap().remove(INPUT_HASH);
        }
        let pod = expected
            .spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap();
        pod.volumes.as_mut().unwrap().retain(|v| v.name != "config");
        let reloaders = pod
            .containers
            .iter_mut()
            .chain(pod.init_containers.iter_mut().flatten())
            .filter(|c| c.name.ends_with("config-reloader"));
        for c in reloaders {
            c.volume_mounts
                .as_mut()
                .unwrap()
                .retain(|m| m.name != "config");
            let args = c.args.as_mut().unwrap();
            args.retain(|a| a != "--watched-dir=/etc/prometheus/config");
            for a in args.iter_mut() {
                if a.starts_with("--config-file=") {
                    *a = "--config-secret=prometheus-k8s".into();
                }
            }
        }
        assert_eq!(
            serde_json::to_value(&expected).unwrap(),
            serde_json::to_value(&got).unwrap()
        );
    }
    let (role, binding) = api.config_reader.unwrap();
    let rule = &role.rules.unwrap()[0];
    assert_eq!(
        rule.resource_names.as_deref(),
        Some(&["prometheus-k8s".to_string()][..])
    );
    assert_eq!(rule.verbs, ["get", "list", "watch"]);
    let subject = &binding.subjects.unwrap()[0];
    assert_eq!(
        (subject.name.as_str(), subject.namespace.as_deref()),
        ("prom", Some("mon"))
    );
    assert_eq!(binding.role_ref.name, role.metadata.name.unwrap());
}

#[test]
fn the_source_annotation_chooses_per_prometheus() {
    let api = Settings::new(Source::Api, "promreload:test".into());
    let annotated = |value: &str| {
        let mut p = prometheus("{}");
        p.metadata.annotations = Some([(SOURCE_ANNOTATION.to_string(), value.to_string())].into());
        p
    };
    let w = build(&annotated("volume"), &api, WRITTEN).unwrap();
    assert!(w.config_reader.is_none());
    let e = build(&annotated("file"), &api, WRITTEN).unwrap_err();
    assert!(
        e.contains("promreload.io/reloader-source]: \"file\" is not api or volume"),
        "{e}"
    );
    let e = build(
        &prometheus("{automountServiceAccountToken: false}"),
        &api,
        WRITTEN,
    )
    .unwrap_err();
    assert!(
        e.starts_with("spec.automountServiceAccountToken is false"),
        "{e}"
    );
    assert!(
        build(
            &prometheus("{automountServiceAccountToken: false}"),
            &settings(),
            WRITTEN
        )
        .is_ok()
    );
}
