//! The governing Service `prometheus-operated` (`BuildStatefulSetService`) and the web-config
//! Secret (`webconfig`).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};
use serde_yaml_ng::{Mapping, Value};

use crate::reconciler::crd::{Prometheus, WebHttpConfig};

use super::{GOVERNING_SERVICE, managed_by, pod};
use crate::reconciler::secret::owner;

/// The headless Service every Prometheus in the namespace shares, owned by each of them (not
/// as controller), so it goes with the last one; `None` when the Prometheus names its own
/// (`serviceName`).
pub fn governing(prometheus: &Prometheus) -> Option<Service> {
    if prometheus
        .spec
        .service_name
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        return None;
    }
    let port = pod::port_name(&prometheus.spec);
    let mut labels = managed_by();
    labels.insert("operated-prometheus".into(), "true".into());
    let owner = prometheus
        .controller_owner_ref(&())
        .map(|o| OwnerReference {
            controller: None,
            block_owner_deletion: None,
            ..o
        });
    Some(Service {
        metadata: ObjectMeta {
            name: Some(GOVERNING_SERVICE.into()),
            namespace: prometheus.namespace(),
            labels: Some(labels),
            owner_references: owner.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            ports: Some(vec![ServicePort {
                name: Some(port.into()),
                port: 9090,
                target_port: Some(IntOrString::String(port.into())),
                ..ServicePort::default()
            }]),
            selector: Some(BTreeMap::from([(
                "app.kubernetes.io/name".to_string(),
                "prometheus".to_string(),
            )])),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

/// `prometheus-<name>-web-config`, key `web-config.yaml`: empty, or the `http_server_config`
/// of `web.httpConfig` as the operator writes it.
pub fn web_config(prometheus: &Prometheus) -> Result<Secret, String> {
    let http = prometheus
        .spec
        .web
        .as_ref()
        .and_then(|w| w.http_config.as_ref());
    let text = match http {
        None => String::new(),
        Some(http) => {
            let root = Mapping::from_iter([("http_server_config".into(), http_server(http)?)]);
            serde_yaml_ng::to_string(&root).expect("a YAML value serializes")
        }
    };
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(super::web_config_secret_name(prometheus)),
            namespace: prometheus.namespace(),
            labels: Some(managed_by()),
            owner_references: owner(prometheus).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "web-config.yaml".to_string(),
            ByteString(text.into_bytes()),
        )])),
        type_: Some("Opaque".into()),
        ..Secret::default()
    })
}

/// The name of the Role and RoleBinding that let a Prometheus's Pods read its config Secret.
pub fn config_reader_name(prometheus: &Prometheus) -> String {
    format!("prometheus-{}-config-reader", prometheus.name_any())
}

/// In API mode: a Role allowing `get`, `list` and `watch` on the config Secret alone
/// (`resourceNames`; promreload lists and watches it by name), bound to the Pods' service
/// account.
pub fn config_reader(prometheus: &Prometheus) -> (Role, RoleBinding) {
    let name = config_reader_name(prometheus);
    let meta = ObjectMeta {
        name: Some(name.clone()),
        namespace: prometheus.namespace(),
        labels: Some(managed_by()),
        owner_references: owner(prometheus).map(|o| vec![o]),
        ..ObjectMeta::default()
    };
    let role = Role {
        metadata: meta.clone(),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["secrets".into()]),
            resource_names: Some(vec![format!("prometheus-{}", prometheus.name_any())]),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            ..PolicyRule::default()
        }]),
    };
    let account = prometheus
        .spec
        .service_account_name
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into());
    let binding = RoleBinding {
        metadata: meta,
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name,
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: account,
            namespace: prometheus.namespace(),
            ..Subject::default()
        }]),
    };
    (role, binding)
}

fn http_server(http: &WebHttpConfig) -> Result<Value, String> {
    let mut out = Mapping::new();
    if let Some(http2) = http.http2 {
        out.insert("http2".into(), http2.into());
    }
    let Some(headers) = &http.headers else {
        return Ok(Value::Mapping(out));
    };
    let mut h = Mapping::new();
    let fields = [
        (
            "Content-Security-Policy",
            &headers.content_security_policy,
            None,
        ),
        (
            "Strict-Transport-Security",
            &headers.strict_transport_security,
            None,
        ),
        (
            "X-Content-Type-Options",
            &headers.x_content_type_options,
            Some(&["NoSniff"][..]),
        ),
        (
            "X-Frame-Options",
            &headers.x_frame_options,
            Some(&["Deny", "SameOrigin"][..]),
        ),
        ("X-XSS-Protection", &headers.x_xss_protection, None),
    ];
    for (name, value, allowed) in fields {
        let Some(value) = value.as_deref().filter(|v| !v.is_empty()) else {
            continue;
        };
        let value = match allowed {
            Some(allowed) if !allowed.contains(&value) => {
                return Err(format!(
                    "spec.web.httpConfig.headers: {name} {value:?} is not one of {}",
                    allowed.join(", ")
                ));
            }
            // The operator writes the enumerated ones in lower case.
            Some(_) => value.to_lowercase(),
            None => value.to_string(),
        };
        h.insert(name.into(), value.into());
    }
    out.insert("headers".into(), Value::Mapping(h));
    Ok(Value::Mapping(out))
}
