//! The real prometheus-operator (v0.94.1, built from its Go module by `scripts/operator.sh`)
//! as the oracle: for each case, the same objects are given to the operator and then to the
//! reconciler, against a real kube-apiserver with the operator's own (upstream) CRDs, and
//! the two `prometheus-<name>` Secrets are compared as parsed YAML, whole, the two
//! `prometheus-<name>-tls-assets-0` Secrets byte for byte, and the rule ConfigMaps
//! (`prometheus-<name>-rulefiles-<i>`) by name, owner and parsed files. Nothing is excluded. The operator
//! runs with its default feature gates.

use std::time::{Duration, Instant};

use crate::support::cluster::*;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams};

const WAIT: Duration = Duration::from_secs(60);
/// The reloader image the operator is told about (it only names it in StatefulSets).
const OPERATORS_RELOADER: &str = "quay.io/prometheus-operator/prometheus-config-reloader:v0.94.1";

/// The cases: Prometheus + ServiceMonitors and PodMonitors (+ Secrets and ConfigMaps) as users write them,
/// covering what the reconciler renders. The word `NS` is replaced by the case's namespace, `@CERT@`,
/// `@KEY@` and `@OTHER_KEY@` by PEM (a self-signed certificate, its key, another key), `@V1_CERT@`
/// and `@V1_KEY@` by an X.509 v1 certificate and its PKCS#1 key.
const CASES: &[(&str, &str)] = &[
    (
        "basic",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  serviceMonitorSelector: {matchLabels: {release: k8s}}
---
kind: ServiceMonitor
metadata: {name: web, labels: {release: k8s}}
spec:
  selector: {matchLabels: {app: web}}
  endpoints:
  - {port: http, path: /metrics, interval: 15s}
---
kind: ServiceMonitor
metadata: {name: unselected, labels: {release: other}}
spec:
  selector: {matchLabels: {app: other}}
  endpoints: [{port: http}]
",
    ),
    (
        "gerrit-credentials",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  serviceMonitorSelector: {matchLabels: {release: prometheus-operator}}
---
kind: Secret
metadata: {name: gerrit}
stringData: {user: gerrit-bot, token: s3cr3t-t0ken}
---
kind: ServiceMonitor
metadata: {name: gerrit, labels: {release: prometheus-operator}}
spec:
  selector: {matchLabels: {app: gerrit}}
  endpoints:
  - port: http
    path: /a/plugins/metrics-reporter-prometheus/metrics
    basicAuth:
      username: {name: gerrit, key: user}
      password: {name: gerrit, key: token}
  - port: http
    bearerTokenSecret: {name: gerrit, key: token}
  - port: http
    authorization: {credentials: {name: gerrit, key: token}}
  - port: http
    authorization: {type: Token, credentials: {name: gerrit, key: token}}
",
    ),
    (
        "shards-and-relabelings",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  shards: 3
  serviceMonitorSelector: {}
---
kind: ServiceMonitor
metadata: {name: app}
spec:
  selector: {matchLabels: {app: app}}
  endpoints:
  - port: metrics
    relabelings:
    - {sourceLabels: [__meta_kubernetes_pod_node_name], targetLabel: node_name}
    - {action: labeldrop, regex: 'tmp_.*'}
    metricRelabelings:
    - {sourceLabels: [__name__], regex: 'go_.*', action: drop}
",
    ),
    (
        "endpoint-fields",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  serviceMonitorSelector: {matchLabels: {team: a}}
  scrapeInterval: 1m
  scrapeTimeout: 20s
  evaluationInterval: 2m
  externalLabels: {cluster: prod, region: eu-1}
  retention: 15d
  retentionSize: 10GB
---
kind: ServiceMonitor
metadata: {name: db, labels: {team: a}}
spec:
  jobLabel: app.kubernetes.io/name
  targetLabels: [tier]
  podTargetLabels: [version]
  selector:
    matchLabels: {app: db}
    matchExpressions:
    - {key: tier, operator: In, values: [backend, storage]}
    - {key: canary, operator: NotIn, values: ['true']}
    - {key: monitored, operator: Exists}
    - {key: legacy, operator: DoesNotExist}
  namespaceSelector: {matchNames: [NS, other]}
  endpoints:
  - {targetPort: 9187, scheme: https, params: {module: [pg]}, scrapeTimeout: 10s, honorLabels: true, honorTimestamps: false}
  - {targetPort: web, filterRunning: false}
  - {port: admin, interval: 30s}
---
kind: ServiceMonitor
metadata: {name: everywhere, labels: {team: a}}
spec:
  selector: {matchLabels: {app: node-exporter}}
  namespaceSelector: {any: true}
  endpoints: [{port: metrics}]
",
    ),
    (
        "limits-protocols-http",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  serviceMonitorSelector: {}
---
kind: ServiceMonitor
metadata: {name: limited}
spec:
  selector: {matchLabels: {app: limited}}
  sampleLimit: 5000
  targetLimit: 10
  labelLimit: 40
  labelNameLengthLimit: 100
  labelValueLengthLimit: 200
  keepDroppedTargets: 5
  scrapeProtocols: [PrometheusProto, OpenMetricsText1.0.0, PrometheusText1.0.0]
  fallbackScrapeProtocol: PrometheusText0.0.4
  bodySizeLimit: 10MB
  endpoints:
  - port: web
    followRedirects: false
    enableHttp2: false
    trackTimestampsStaleness: true
    proxyUrl: http://proxy.example:3128
    noProxy: localhost,.svc
  - {port: admin, proxyFromEnvironment: true}
",
    ),
    (
        "older-version-gates",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  version: v2.45.0
  serviceMonitorSelector: {}
---
kind: ServiceMonitor
metadata: {name: gated}
spec:
  selector: {matchLabels: {app: gated}}
  sampleLimit: 100
  keepDroppedTargets: 5
  scrapeProtocols: [PrometheusProto]
  fallbackScrapeProtocol: PrometheusText0.0.4
  endpoints:
  - {port: web, trackTimestampsStaleness: true, enableHttp2: true}
",
    ),
    (
        "prometheus-overrides-and-enforcement",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  serviceMonitorSelector: {}
  overrideHonorLabels: true
  overrideHonorTimestamps: true
  ignoreNamespaceSelectors: true
  enforcedNamespaceLabel: tenant
  prometheusExternalLabelName: cluster_prometheus
  replicaExternalLabelName: ''
  externalLabels: {cluster_prometheus: user-value, team: x}
  sampleLimit: 1000
  enforcedSampleLimit: 500
  targetLimit: 50
  enforcedLabelLimit: 30
  enforcedKeepDroppedTargets: 10
  bodySizeLimit: 20MB
  enforcedBodySizeLimit: 10MB
  scrapeProtocols: [OpenMetricsText1.0.0, PrometheusProto]
---
kind: ServiceMonitor
metadata: {name: tenant-a}
spec:
  selector: {matchLabels: {app: a}}
  namespaceSelector: {any: true}
  sampleLimit: 2000
  labelLimit: 10
  targetLimit: 5
  bodySizeLimit: 50MB
  endpoints:
  - port: web
    honorLabels: true
    honorTimestamps: true
    metricRelabelings:
    - {action: labeldrop, regex: tenant}
---
kind: ServiceMonitor
metadata: {name: tenant-b}
spec:
  selector: {matchLabels: {app: b}}
  bodySizeLimit: 1MB
  endpoints: [{port: web}]
",
    ),
    (
        "kube-prometheus-kubelet-tls-files",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  serviceMonitorSelector: {matchLabels: {app.kubernetes.io/part-of: kube-prometheus}}
---
kind: ServiceMonitor
metadata: {name: kubelet, labels: {app.kubernetes.io/part-of: kube-prometheus}}
spec:
  jobLabel: app.kubernetes.io/name
  selector: {matchLabels: {app.kubernetes.io/name: kubelet}}
  namespaceSelector: {matchNames: [kube-system]}
  endpoints:
  - port: https-metrics
    scheme: https
    interval: 30s
    honorLabels: true
    bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
    tlsConfig: {caFile: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt, insecureSkipVerify: true}
    metricRelabelings:
    - {action: drop, sourceLabels: [__name__], regex: kubelet_(pod_worker_latency_microseconds|pod_start_latency_microseconds)}
  - port: https-metrics
    scheme: https
    path: /metrics/cadvisor
    bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
    tlsConfig:
      caFile: /etc/prometheus/secrets/ca.crt
      certFile: /etc/prometheus/secrets/client.crt
      keyFile: /etc/prometheus/secrets/client.key
      serverName: kubernetes
      minVersion: TLS12
      maxVersion: TLS13
",
    ),
    (
        "tls-assets-oauth2-proxy",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  serviceMonitorSelector: {}
---
kind: Secret
metadata: {name: tls}
stringData: {tls.crt: @CERT@, tls.key: @KEY@, other.key: @OTHER_KEY@, client-secret: s3cr3t, proxy-auth: Basic YWxhZGRpbjpvcGVu}
---
kind: ConfigMap
metadata: {name: ca}
data: {ca.crt: @CERT@, client-id: my-client, junk: not a certificate}
---
kind: ServiceMonitor
metadata: {name: mtls}
spec:
  selector: {matchLabels: {app: mtls}}
  endpoints:
  - port: https
    scheme: https
    tlsConfig:
      ca: {configMap: {name: ca, key: ca.crt}}
      cert: {secret: {name: tls, key: tls.crt}}
      keySecret: {name: tls, key: tls.key}
      serverName: mtls.example
      minVersion: TLS12
  - port: https
    tlsConfig: {ca: {secret: {name: tls, key: tls.crt}}, insecureSkipVerify: false}
---
kind: ServiceMonitor
metadata: {name: oauth}
spec:
  selector: {matchLabels: {app: oauth}}
  endpoints:
  - port: web
    proxyUrl: http://proxy.example:3128
    proxyConnectHeader: {Proxy-Authorization: [{name: tls, key: proxy-auth}]}
    oauth2:
      clientId: {configMap: {name: ca, key: client-id}}
      clientSecret: {name: tls, key: client-secret}
      tokenUrl: https://idp.example/token
      scopes: [metrics, read]
      endpointParams: {audience: prometheus}
      proxyFromEnvironment: true
      tlsConfig: {ca: {configMap: {name: ca, key: ca.crt}}, serverName: idp.example}
---
kind: ServiceMonitor
metadata: {name: mismatched-key}
spec:
  selector: {matchLabels: {app: mismatch}}
  endpoints:
  - port: https
    tlsConfig: {cert: {secret: {name: tls, key: tls.crt}}, keySecret: {name: tls, key: other.key}}
---
kind: ServiceMonitor
metadata: {name: missing-key}
spec:
  selector: {matchLabels: {app: nokey}}
  endpoints:
  - port: https
    tlsConfig: {ca: {configMap: {name: ca, key: nope}}}
---
kind: ServiceMonitor
metadata: {name: junk-ca}
spec:
  selector: {matchLabels: {app: junk}}
  endpoints:
  - port: https
    tlsConfig: {ca: {configMap: {name: ca, key: junk}}}
---
kind: ServiceMonitor
metadata: {name: two-auth-methods}
spec:
  selector: {matchLabels: {app: twoauth}}
  endpoints:
  - port: web
    bearerTokenSecret: {name: tls, key: client-secret}
    authorization: {credentials: {name: tls, key: client-secret}}
",
    ),
    (
        "discovery-roles-metadata-histograms",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  serviceMonitorSelector: {}
  serviceDiscoveryRole: EndpointSlice
  podTargetLabels: [app.kubernetes.io/version, team]
---
kind: ServiceMonitor
metadata: {name: slices-by-default}
spec:
  selector: {matchLabels: {app: a}}
  podTargetLabels: [zone]
  attachMetadata: {node: true}
  endpoints: [{port: web}, {targetPort: 8080}]
---
kind: ServiceMonitor
metadata: {name: endpoints-role-selector}
spec:
  serviceDiscoveryRole: Endpoints
  selectorMechanism: RoleSelector
  selector:
    matchLabels: {app: b, team: x}
    matchExpressions:
    - {key: tier, operator: In, values: [web, api]}
    - {key: canary, operator: DoesNotExist}
  attachMetadata: {node: false}
  endpoints: [{port: web}]
---
kind: ServiceMonitor
metadata: {name: histograms}
spec:
  selector: {matchLabels: {app: c}}
  selectorMechanism: RelabelConfig
  scrapeNativeHistograms: true
  scrapeClassicHistograms: true
  nativeHistogramBucketLimit: 160
  nativeHistogramMinBucketFactor: '1.1'
  convertClassicHistogramsToNHCB: true
  endpoints: [{port: web}]
",
    ),
    (
        "enforcement-exclusions-and-file-access",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  serviceMonitorSelector: {}
  enforcedNamespaceLabel: tenant
  excludedFromEnforcement:
  - {resource: servicemonitors, namespace: NS, name: trusted}
  - {group: monitoring.coreos.com, resource: servicemonitors, namespace: other-ns}
  arbitraryFSAccessThroughSMs: {deny: true}
---
kind: ServiceMonitor
metadata: {name: trusted}
spec:
  selector: {matchLabels: {app: t}}
  endpoints: [{port: web, metricRelabelings: [{action: labeldrop, regex: x}]}]
---
kind: ServiceMonitor
metadata: {name: tenant}
spec:
  selector: {matchLabels: {app: u}}
  endpoints: [{port: web}]
---
kind: ServiceMonitor
metadata: {name: reads-files}
spec:
  selector: {matchLabels: {app: f}}
  endpoints: [{port: web, bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}]
",
    ),
    (
        "scrape-classes",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  serviceMonitorSelector: {}
  scrapeClasses:
  - name: mesh
    default: true
    tlsConfig: {caFile: /etc/mesh/root.pem, certFile: /etc/mesh/chain.pem, keyFile: /etc/mesh/key.pem, insecureSkipVerify: true}
    relabelings: [{targetLabel: mesh, replacement: 'on'}]
    metricRelabelings: [{action: labeldrop, regex: mesh_.*}]
    attachMetadata: {node: true}
    fallbackScrapeProtocol: PrometheusText0.0.4
  - name: token
    authorization: {credentialsFile: /var/run/secrets/token}
---
kind: ServiceMonitor
metadata: {name: default-class}
spec:
  selector: {matchLabels: {app: a}}
  endpoints: [{port: web}, {port: https, tlsConfig: {serverName: x, caFile: /own/ca.pem}}]
---
kind: ServiceMonitor
metadata: {name: token-class}
spec:
  scrapeClass: token
  selector: {matchLabels: {app: b}}
  endpoints: [{port: web}]
---
kind: ServiceMonitor
metadata: {name: authorization-without-credentials}
spec:
  scrapeClass: token
  selector: {matchLabels: {app: e}}
  endpoints: [{port: web, authorization: {type: Custom}}]
---
kind: ServiceMonitor
metadata: {name: own-settings}
spec:
  scrapeClass: mesh
  attachMetadata: {node: false}
  fallbackScrapeProtocol: PrometheusProto
  selector: {matchLabels: {app: c}}
  endpoints: [{port: web, metricRelabelings: [{action: drop, regex: x, sourceLabels: [__name__]}]}]
---
kind: ServiceMonitor
metadata: {name: unknown-class}
spec:
  scrapeClass: nope
  selector: {matchLabels: {app: d}}
  endpoints: [{port: web}]
",
    ),
    (
        "global-runtime-storage",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  serviceMonitorSelector: {}
  scrapeFailureLogFile: failures.log
  queryLogFile: /tmp/query.log
  nameValidationScheme: Legacy
  nameEscapingScheme: Underscores
  convertClassicHistogramsToNHCB: true
  scrapeClassicHistograms: true
  scrapeNativeHistograms: false
  ruleQueryOffset: 1m
  runtime: {goGC: 75}
  exemplars: {maxSize: 100000}
  tsdb: {outOfOrderTimeWindow: 10m, staleSeriesCompactionThreshold: '0.5', chunkEncoding: {floats: Xor2}}
  retentionSize: 10GB
  retentionPercentage: 50
---
kind: ServiceMonitor
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  endpoints: [{port: http}]
",
    ),
    (
        "global-runtime-storage-older-version",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  version: v2.54.1
  serviceMonitorSelector: {}
  scrapeFailureLogFile: failures.log
  queryLogFile: query.log
  nameValidationScheme: Legacy
  convertClassicHistogramsToNHCB: true
  scrapeNativeHistograms: true
  ruleQueryOffset: 30s
  runtime: {goGC: 50}
  exemplars: {maxSize: 1000}
  tsdb: {outOfOrderTimeWindow: 5m, staleSeriesCompactionThreshold: '0.25'}
  retention: 7d
",
    ),
    (
        "remote-write-read-alerting-additional",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  serviceMonitorSelector: {}
  shards: 2
  remoteWrite:
  - url: https://thanos.example/api/v1/receive
    name: thanos
    remoteTimeout: 30s
    headers: {X-Scope-OrgID: team-a}
    messageVersion: V2.0
    sendExemplars: true
    sendNativeHistograms: true
    writeRelabelConfigs:
    - {sourceLabels: [__name__], regex: 'go_.*', action: drop}
    - {targetLabel: cluster, replacement: eu-1}
    basicAuth: {username: {name: rw, key: user}, password: {name: rw, key: pass}}
    tlsConfig: {ca: {secret: {name: rw, key: ca.crt}}, cert: {configMap: {name: rw-cm, key: tls.crt}}, keySecret: {name: rw, key: tls.key}, serverName: thanos}
    proxyUrl: http://proxy:3128
    followRedirects: false
    enableHTTP2: true
    queueConfig: {capacity: 10000, minShards: 1, maxShards: 50, maxSamplesPerSend: 2000, batchSendDeadline: 5s, minBackoff: 30ms, maxBackoff: 5s, retryOnRateLimit: true, sampleAgeLimit: 1h}
    metadataConfig: {send: true, sendInterval: 1m, maxSamplesPerSend: 500}
    roundRobinDNS: true
  - url: http://cortex/push
    authorization: {type: Bearer, credentials: {name: rw, key: token}}
    metadataConfig: {send: false}
    queueConfig: {}
  - url: http://mimir/push
    oauth2: {clientId: {configMap: {name: rw-cm, key: id}}, clientSecret: {name: rw, key: pass}, tokenUrl: 'https://idp/token', scopes: [write], endpointParams: {a: b}}
  - url: http://vm/push
    authorization: {credentialsFile: /etc/token}
  - url: http://token/push
    bearerToken: inline-token
  - url: http://token-file/push
    bearerTokenFile: /etc/other
  remoteRead:
  - url: http://thanos-query/api/v1/read
    name: thanos
    readRecent: true
    requiredMatchers: {job: x}
    headers: {A: b}
    filterExternalLabels: false
    remoteTimeout: 1m
    basicAuth: {username: {name: rw, key: user}, password: {name: rw, key: pass}}
  - url: http://other/read
    tlsConfig: {caFile: /etc/ca.pem, insecureSkipVerify: true}
    followRedirects: true
  alerting:
    alertmanagers:
    - name: alertmanager-main
      namespace: monitoring
      port: web
      apiVersion: V2
      pathPrefix: /am
      timeout: 10s
      scheme: HTTPS
      enableHttp2: false
      tlsConfig: {caFile: /etc/ca.pem, serverName: am}
      authorization: {credentials: {name: rw, key: token}}
      relabelings: [{targetLabel: am_x, replacement: am-value}]
      alertRelabelings: [{action: drop, sourceLabels: [severity], regex: none}]
    - {name: am-other, port: 9093, basicAuth: {username: {name: rw, key: user}, password: {name: rw, key: pass}}}
    - {name: am-third, port: 0, bearerTokenFile: /etc/am-token, proxyUrl: 'http://proxy:3128'}
  additionalScrapeConfigs: {name: extra, key: jobs.yaml}
  additionalAlertRelabelConfigs: {name: extra, key: relabel.yaml}
  additionalAlertManagerConfigs: {name: extra, key: am.yaml}
---
kind: Secret
metadata: {name: rw}
stringData: {user: u, pass: p, token: t, ca.crt: @CERT@, tls.key: @KEY@}
---
kind: ConfigMap
metadata: {name: rw-cm}
data: {tls.crt: @CERT@, id: client-1}
---
kind: Secret
metadata: {name: extra}
stringData:
  jobs.yaml: |
    - job_name: static
      static_configs: [{targets: ['a:9100']}]
    - job_name: sharded-own
      static_configs: [{targets: ['b:9100']}]
      relabel_configs: [{source_labels: [__address__], target_label: __tmp_hash, modulus: 4, action: hashmod}]
  relabel.yaml: |
    - {action: labeldrop, regex: tenant}
  am.yaml: |
    - static_configs: [{targets: ['am:9093']}]
---
kind: ServiceMonitor
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  endpoints: [{port: http}]
",
    ),
    (
        "kube-prometheus-every-selector",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  serviceMonitorSelector: {}
  serviceMonitorNamespaceSelector: {}
  podMonitorSelector: {}
  podMonitorNamespaceSelector: {}
  probeSelector: {}
  probeNamespaceSelector: {}
  scrapeConfigSelector: {}
  scrapeConfigNamespaceSelector: {}
  ruleSelector: {}
  ruleNamespaceSelector: {}
---
kind: ServiceMonitor
metadata: {name: node-exporter}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: node-exporter}}
  endpoints: [{port: https, scheme: https, bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token, tlsConfig: {insecureSkipVerify: true}}]
",
    ),
    (
        "prometheus-rules",
        r#"
kind: Prometheus
metadata: {name: k8s}
spec:
  serviceMonitorSelector: {}
  ruleSelector: {matchLabels: {role: alert-rules}}
---
kind: PrometheusRule
metadata: {name: node, labels: {role: alert-rules}}
spec:
  groups:
  - name: node.rules
    interval: 1m
    query_offset: 30s
    limit: 100
    labels: {team: infra}
    partial_response_strategy: warn
    rules:
    - record: instance:node_cpu:rate5m
      expr: sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))
    - record: one
      expr: 1
    - alert: NodeDown
      expr: up{job="node"} == 0
      for: 5m
      keep_firing_for: 1m
      labels: {severity: critical}
      annotations:
        summary: 'Node {{ $labels.instance }} is down'
        description: |
          {{ if gt $value 0.0 }}value {{ $value | humanize }}{{ end }}
          for more than 5 minutes.
  - name: empty-group
---
kind: PrometheusRule
metadata: {name: bad-promql, labels: {role: alert-rules}}
spec:
  groups:
  - name: broken
    rules:
    - {alert: Broken, expr: 'sum(rate(x[5m])'}
---
kind: PrometheusRule
metadata: {name: bad-template, labels: {role: alert-rules}}
spec:
  groups:
  - name: templated
    rules:
    - {alert: Unclosed, expr: up == 0, annotations: {summary: '{{ $labels.job '}}
---
kind: PrometheusRule
metadata: {name: no-groups, labels: {role: alert-rules}}
spec: {}
---
kind: PrometheusRule
metadata: {name: unselected, labels: {role: other}}
spec:
  groups: [{name: x, rules: [{record: x, expr: up}]}]
"#,
    ),
    (
        "prometheus-rules-enforced-older-version",
        r#"
kind: Prometheus
metadata: {name: k8s}
spec:
  version: v2.45.0
  serviceMonitorSelector: {}
  ruleSelector: {}
  ruleNamespaceSelector: {matchLabels: {kubernetes.io/metadata.name: NS}}
  enforcedNamespaceLabel: tenant
  excludedFromEnforcement:
  - {resource: prometheusrules, namespace: NS, name: excluded}
---
kind: PrometheusRule
metadata: {name: tenant}
spec:
  groups:
  - name: tenant.rules
    query_offset: 1m
    labels: {dropped: before-3.0}
    limit: 10
    rules:
    - record: job:requests:rate5m
      expr: 'sum by (job) (rate(http_requests_total{tenant="other", code=~"5.."}[5m])) / on (job) group_left sum by (job) (rate(http_requests_total[5m]))'
    - alert: Absent
      expr: absent(up{job="api"}) or vector(0) > 1
      keep_firing_for: 2m
      labels: {tenant: spoofed}
    - record: sub
      expr: max_over_time(x[1h:5m] offset 1h) * -1
---
kind: PrometheusRule
metadata: {name: excluded}
spec:
  groups:
  - name: excluded
    rules: [{record: untouched, expr: 'up{tenant="other"}'}]
---
kind: PrometheusRule
metadata: {name: legacy-name}
spec:
  groups:
  - name: utf8
    rules: [{record: 'my.metric', expr: up}]
"#,
    ),
    (
        "pod-monitors",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  podMonitorSelector: {matchLabels: {team: a}}
  podMonitorNamespaceSelector: {}
  podTargetLabels: [release]
---
kind: PodMonitor
metadata: {name: envoy, labels: {team: a}}
spec:
  jobLabel: app.kubernetes.io/name
  podTargetLabels: [version, app.kubernetes.io/component]
  selector:
    matchLabels: {app: envoy}
    matchExpressions:
    - {key: tier, operator: In, values: [edge, mesh]}
    - {key: canary, operator: NotIn, values: ['true']}
    - {key: monitored, operator: Exists}
    - {key: legacy, operator: DoesNotExist}
  namespaceSelector: {matchNames: [NS, istio-system]}
  podMetricsEndpoints:
  - {port: http-envoy-prom, path: /stats/prometheus, interval: 15s, scrapeTimeout: 10s, params: {format: [prometheus]}, scheme: https, honorLabels: true, honorTimestamps: false, trackTimestampsStaleness: true}
  - {portNumber: 9102, filterRunning: false}
  - {targetPort: 8080}
  - port: admin
    relabelings: [{sourceLabels: [__meta_kubernetes_pod_node_name], targetLabel: node}, {action: labeldrop, regex: 'tmp_.*'}]
    metricRelabelings: [{sourceLabels: [__name__], regex: 'go_.*', action: drop}]
  - {targetPort: web, followRedirects: false, enableHttp2: true, proxyUrl: 'http://proxy.example:3128', noProxy: .svc}
---
kind: PodMonitor
metadata: {name: everywhere, labels: {team: a}}
spec:
  selector: {matchLabels: {app: node-agent}, matchExpressions: [{key: tier, operator: In, values: [b, a]}]}
  selectorMechanism: RoleSelector
  namespaceSelector: {any: true}
  attachMetadata: {node: true}
  podMetricsEndpoints: [{port: metrics}]
---
kind: PodMonitor
metadata: {name: unselected, labels: {team: b}}
spec:
  selector: {}
  podMetricsEndpoints: [{port: metrics}]
",
    ),
    (
        "pod-monitor-credentials",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  podMonitorSelector: {}
---
kind: Secret
metadata: {name: creds}
stringData: {user: bot, token: s3cr3t, tls.crt: @CERT@, tls.key: @KEY@, other.key: @OTHER_KEY@, v1.crt: @V1_CERT@, v1.key: @V1_KEY@}
---
kind: ConfigMap
metadata: {name: ca}
data: {ca.crt: @CERT@, client-id: my-client}
---
kind: PodMonitor
metadata: {name: secured}
spec:
  selector: {matchLabels: {app: secured}}
  podMetricsEndpoints:
  - port: a
    basicAuth: {username: {name: creds, key: user}, password: {name: creds, key: token}}
  - port: b
    bearerTokenSecret: {name: creds, key: token}
  - port: c
    authorization: {type: Token, credentials: {name: creds, key: token}}
  - port: d
    oauth2:
      clientId: {configMap: {name: ca, key: client-id}}
      clientSecret: {name: creds, key: token}
      tokenUrl: https://idp.example/token
      scopes: [metrics]
      endpointParams: {audience: prometheus}
      tlsConfig: {ca: {configMap: {name: ca, key: ca.crt}}}
  - port: e
    scheme: https
    tlsConfig:
      ca: {configMap: {name: ca, key: ca.crt}}
      cert: {secret: {name: creds, key: tls.crt}}
      keySecret: {name: creds, key: tls.key}
      serverName: secured.example
      minVersion: TLS12
  - port: f
    proxyUrl: http://proxy.example:3128
    proxyConnectHeader: {Proxy-Authorization: [{name: creds, key: token}]}
  - {port: g, tlsConfig: {}}
  - {port: h, tlsConfig: {cert: {secret: {name: creds, key: v1.crt}}, keySecret: {name: creds, key: v1.key}}}
---
kind: PodMonitor
metadata: {name: missing-secret}
spec:
  selector: {matchLabels: {app: missing}}
  podMetricsEndpoints:
  - {port: a, bearerTokenSecret: {name: nope, key: token}}
---
kind: PodMonitor
metadata: {name: mismatched-key}
spec:
  selector: {matchLabels: {app: mismatch}}
  podMetricsEndpoints:
  - {port: a, tlsConfig: {cert: {secret: {name: creds, key: tls.crt}}, keySecret: {name: creds, key: other.key}}}
---
kind: PodMonitor
metadata: {name: two-auth-methods}
spec:
  selector: {matchLabels: {app: twoauth}}
  podMetricsEndpoints:
  - {port: a, basicAuth: {username: {name: creds, key: user}, password: {name: creds, key: token}}, authorization: {credentials: {name: creds, key: token}}}
",
    ),
    (
        "pod-monitor-classes-shards",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  shards: 2
  podMonitorSelector: {}
  enforcedNamespaceLabel: tenant
  excludedFromEnforcement:
  - {resource: podmonitors, namespace: NS, name: trusted}
  enforcedSampleLimit: 1000
  enforcedBodySizeLimit: 5MB
  scrapeClasses:
  - name: mesh
    default: true
    tlsConfig: {caFile: /etc/istio/root-cert.pem, certFile: /etc/istio/cert-chain.pem, keyFile: /etc/istio/key.pem}
    relabelings: [{targetLabel: mesh, replacement: istio}]
    metricRelabelings: [{action: labeldrop, regex: istio_.*}]
    fallbackScrapeProtocol: PrometheusText0.0.4
  - name: plain
    attachMetadata: {node: true}
---
kind: PodMonitor
metadata: {name: limited}
spec:
  selector: {matchLabels: {app: limited}}
  sampleLimit: 5000
  targetLimit: 10
  labelLimit: 40
  labelNameLengthLimit: 100
  labelValueLengthLimit: 200
  keepDroppedTargets: 5
  scrapeProtocols: [PrometheusProto, OpenMetricsText1.0.0]
  bodySizeLimit: 10MB
  scrapeNativeHistograms: true
  nativeHistogramBucketLimit: 160
  nativeHistogramMinBucketFactor: '1.1'
  podMetricsEndpoints:
  - {port: web, metricRelabelings: [{action: labeldrop, regex: x}]}
  - {port: web, tlsConfig: {serverName: only-a-name}}
  - {port: web, tlsConfig: {}}
---
kind: PodMonitor
metadata: {name: trusted}
spec:
  scrapeClass: plain
  selector: {matchLabels: {app: trusted}}
  podMetricsEndpoints: [{port: web}]
---
kind: PodMonitor
metadata: {name: unknown-class}
spec:
  scrapeClass: nope
  selector: {matchLabels: {app: x}}
  podMetricsEndpoints: [{port: web}]
---
kind: PodMonitor
metadata: {name: bad-timeout}
spec:
  selector: {matchLabels: {app: slow}}
  podMetricsEndpoints: [{port: web, interval: 10s, scrapeTimeout: 20s}]
",
    ),
    (
        "pod-monitor-older-version",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  version: v2.34.0
  podMonitorSelector: {}
---
kind: PodMonitor
metadata: {name: gated}
spec:
  selector: {matchLabels: {app: gated}}
  attachMetadata: {node: true}
  sampleLimit: 100
  keepDroppedTargets: 5
  scrapeProtocols: [PrometheusProto]
  fallbackScrapeProtocol: PrometheusText0.0.4
  podMetricsEndpoints:
  - {port: web, trackTimestampsStaleness: true, enableHttp2: true, followRedirects: true}
",
    ),
    (
        "kube-prometheus-one-bad-pm",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  serviceMonitorSelector: {}
  serviceMonitorNamespaceSelector: {}
  podMonitorSelector: {}
  podMonitorNamespaceSelector: {}
  probeSelector: {}
  probeNamespaceSelector: {}
  scrapeConfigSelector: {}
  scrapeConfigNamespaceSelector: {}
---
kind: ServiceMonitor
metadata: {name: kube-state-metrics}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: kube-state-metrics}}
  endpoints: [{port: http-metrics, honorLabels: true}]
---
kind: PodMonitor
metadata: {name: envoy-stats}
spec:
  selector: {matchExpressions: [{key: security.istio.io/tlsMode, operator: Exists}]}
  namespaceSelector: {any: true}
  jobLabel: envoy-stats
  podMetricsEndpoints:
  - path: /stats/prometheus
    interval: 15s
    relabelings:
    - {action: keep, sourceLabels: [__meta_kubernetes_pod_container_name], regex: istio-proxy}
    - {action: replace, regex: '([0-9]+);(([A-Fa-f0-9]{1,4}::?){1,7}[A-Fa-f0-9]{1,4})', replacement: '[$2]:$1', sourceLabels: [__meta_kubernetes_pod_annotation_prometheus_io_port, __meta_kubernetes_pod_ip], targetLabel: __address__}
    - {action: labeldrop, regex: '__meta_kubernetes_pod_label_(.+)'}
---
kind: PodMonitor
metadata: {name: cnpg-cluster}
spec:
  selector: {matchLabels: {cnpg.io/cluster: pg, cnpg.io/podRole: instance}}
  podMetricsEndpoints:
  - {port: metrics, bearerTokenSecret: {name: cnpg-missing, key: token}}
",
    ),
    (
        "probes",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  probeSelector: {matchLabels: {team: a}}
---
kind: Secret
metadata: {name: proxy}
stringData: {auth: Basic YWxhZGRpbjpvcGVu}
---
kind: Probe
metadata: {name: websites, labels: {team: a}}
spec:
  jobName: blackbox-websites
  interval: 60s
  scrapeTimeout: 15s
  module: http_2xx
  params:
  - {name: module, values: [ignored]}
  - {name: debug, values: ['true']}
  prober: {url: 'blackbox-exporter.NS.svc:19115', scheme: https, path: /custom-probe}
  targets:
    staticConfig:
      static: ['https://example.com', 'https://prometheus.io']
      labels: {env: prod, namespace: overridden}
      relabelingConfigs:
      - {sourceLabels: [instance], targetLabel: site}
  metricRelabelings:
  - {sourceLabels: [__name__], regex: 'probe_dns_.*', action: drop}
---
kind: Probe
metadata: {name: ingresses, labels: {team: a}}
spec:
  prober: {url: 'blackbox:9115', proxyUrl: 'http://proxy.example:3128', noProxy: .svc, proxyConnectHeader: {Proxy-Authorization: [{name: proxy, key: auth}]}}
  module: http_2xx
  targets:
    ingress:
      selector:
        matchLabels: {probe: 'true'}
        matchExpressions: [{key: tier, operator: In, values: [web]}, {key: legacy, operator: DoesNotExist}]
      namespaceSelector: {matchNames: [NS, web]}
      relabelingConfigs:
      - {sourceLabels: [__tmp_ingress_address], targetLabel: address}
---
kind: Probe
metadata: {name: any-namespace, labels: {team: a}}
spec:
  prober: {url: '[::1]:9115'}
  targets:
    ingress:
      namespaceSelector: {any: true}
---
kind: Probe
metadata: {name: unselected, labels: {team: b}}
spec:
  prober: {url: 'blackbox:9115'}
  targets: {staticConfig: {static: [example.org]}}
",
    ),
    (
        "probe-credentials-classes-shards",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  shards: 2
  probeSelector: {}
  enforcedNamespaceLabel: tenant
  excludedFromEnforcement:
  - {resource: probes, namespace: NS, name: trusted}
  enforcedSampleLimit: 1000
  enforcedBodySizeLimit: 5MB
  scrapeClasses:
  - name: secure
    default: true
    tlsConfig: {caFile: /etc/prober/ca.pem, serverName: prober.example}
    relabelings: [{targetLabel: class, replacement: secure}]
    metricRelabelings: [{action: labeldrop, regex: probe_tmp_.*}]
  - name: plain
    fallbackScrapeProtocol: PrometheusText0.0.4
---
kind: Secret
metadata: {name: creds}
stringData: {user: bot, token: s3cr3t}
---
kind: ConfigMap
metadata: {name: ca}
data: {ca.crt: @CERT@, client-id: my-client}
---
kind: Probe
metadata: {name: basic}
spec:
  prober: {url: 'blackbox:9115'}
  targets: {staticConfig: {static: [a.example]}}
  basicAuth: {username: {name: creds, key: user}, password: {name: creds, key: token}}
  sampleLimit: 5000
  targetLimit: 10
  labelLimit: 40
  keepDroppedTargets: 3
  scrapeProtocols: [PrometheusProto]
  scrapeNativeHistograms: true
---
kind: Probe
metadata: {name: oauth}
spec:
  prober: {url: 'blackbox:9115'}
  targets: {staticConfig: {static: [b.example]}}
  oauth2: {clientId: {configMap: {name: ca, key: client-id}}, clientSecret: {name: creds, key: token}, tokenUrl: 'https://idp.example/token'}
  tlsConfig: {ca: {configMap: {name: ca, key: ca.crt}}}
  followRedirects: false
---
kind: Probe
metadata: {name: trusted}
spec:
  scrapeClass: plain
  prober: {url: 'blackbox:9115'}
  targets: {staticConfig: {static: [c.example]}}
  authorization: {credentials: {name: creds, key: token}}
---
kind: Probe
metadata: {name: no-targets}
spec:
  prober: {url: 'blackbox:9115'}
  targets: {}
---
kind: Probe
metadata: {name: url-with-scheme}
spec:
  prober: {url: 'http://blackbox:9115'}
  targets: {staticConfig: {static: [d.example]}}
---
kind: Probe
metadata: {name: missing-secret}
spec:
  prober: {url: 'blackbox:9115'}
  targets: {staticConfig: {static: [e.example]}}
  bearerTokenSecret: {name: nope, key: token}
---
kind: Probe
metadata: {name: bad-label}
spec:
  prober: {url: 'blackbox:9115'}
  targets: {staticConfig: {static: [f.example], labels: {'': x}}}
",
    ),
    (
        "alerting-only-additional-optional",
        "
kind: Prometheus
metadata: {name: k8s}
spec:
  serviceMonitorSelector: {}
  replicaExternalLabelName: ''
  serviceDiscoveryRole: EndpointSlice
  alerting:
    alertmanagers: [{name: am, port: web, apiVersion: v1}]
  additionalScrapeConfigs: {name: missing, key: jobs.yaml, optional: true}
",
    ),
];

const CERT: &str = include_str!("../../src/reconciler/testdata/cert.pem");
const KEY: &str = include_str!("../../src/reconciler/testdata/key.pem");
const OTHER_KEY: &str = include_str!("../../src/reconciler/testdata/other-key.pem");
/// An X.509 v1 certificate (`openssl x509 -req` without extensions) and its PKCS#1 RSA key.
const V1_CERT: &str = include_str!("../../src/reconciler/testdata/v1-rsa.crt");
const V1_KEY: &str = include_str!("../../src/reconciler/testdata/v1-rsa-pkcs1.key");

/// The case's objects, in namespace `ns`, with their apiVersions.
fn objects(yaml: &str, ns: &str) -> String {
    yaml.split("\n---\n")
        .map(|doc| {
            let version = if doc.contains("kind: Secret") || doc.contains("kind: ConfigMap") {
                "v1"
            } else {
                "monitoring.coreos.com/v1"
            };
            let doc = regex::Regex::new(r"\bNS\b")
                .unwrap()
                .replace_all(doc.trim(), ns)
                .replacen("metadata: {", &format!("metadata: {{namespace: {ns}, "), 1);
            // PEM as a JSON string, which YAML reads as a double-quoted scalar.
            let pem = |p: &str| serde_json::to_string(p).unwrap();
            let doc = doc
                .replace("@CERT@", &pem(CERT))
                .replace("@OTHER_KEY@", &pem(OTHER_KEY))
                .replace("@V1_CERT@", &pem(V1_CERT))
                .replace("@V1_KEY@", &pem(V1_KEY))
                .replace("@KEY@", &pem(KEY));
            format!("apiVersion: {version}\n{doc}\n")
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// `kubectl apply` of a case's objects. Retried for a few seconds: right after the CRDs are
/// established, kubectl's schema download may not know them yet; an invalid object still
/// fails, with kubectl's words.
fn apply_objects(cluster: &Cluster, yaml: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = std::panic::catch_unwind(|| {
            kubectl_run(cluster, &["apply", "-f", "-"], Some(yaml));
        });
        match attempt {
            Ok(()) => return,
            Err(panic) if Instant::now() >= deadline => std::panic::resume_unwind(panic),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// The config in `prometheus-k8s`, once it exists and stays the same for half a second.
async fn settled_config(client: &Client, ns: &str, managed_by_us: bool) -> String {
    let deadline = Instant::now() + WAIT;
    let mut last: Option<String> = None;
    loop {
        assert!(Instant::now() < deadline, "no settled config in {ns}");
        let current = secret_config(client, ns, "prometheus-k8s")
            .await
            .filter(|(text, secret)| {
                let ours = secret
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("app.kubernetes.io/managed-by"))
                    .is_some_and(|v| v == "promreload-reconciler");
                !text.is_empty() && ours == managed_by_us
            })
            .map(|(text, _)| text);
        if let Some(text) = &current
            && current == last
        {
            return text.clone();
        }
        last = current;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The data of `prometheus-k8s-tls-assets-0`, once it exists.
async fn settled_tls_assets(
    client: &Client,
    ns: &str,
) -> std::collections::BTreeMap<String, String> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(data) = tls_assets(client, ns).await {
            return data;
        }
        assert!(Instant::now() < deadline, "no TLS-assets Secret in {ns}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The rule ConfigMaps of `prometheus-k8s` (`prometheus-k8s-rulefiles-<i>`), each as its
/// name, its owner (kind, name, UID, controller), and its files parsed (a file's YAML layout
/// is the emitter's, its meaning what Prometheus reads).
async fn rule_config_maps(client: &Client, ns: &str) -> Vec<String> {
    let list = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("prometheus-name=k8s"))
        .await
        .unwrap();
    let mut out: Vec<String> = list
        .items
        .into_iter()
        .map(|cm| {
            let owner = cm.metadata.owner_references.unwrap_or_default();
            let owner: Vec<_> = owner
                .iter()
                .map(|o| {
                    (
                        &o.kind,
                        &o.name,
                        &o.uid,
                        o.controller,
                        o.block_owner_deletion,
                    )
                })
                .collect();
            let files: std::collections::BTreeMap<String, serde_yaml_ng::Value> = cm
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, serde_yaml_ng::from_str(&v).unwrap()))
                .collect();
            format!(
                "{} owned by {owner:?}:\n{}",
                cm.metadata.name.unwrap_or_default(),
                serde_yaml_ng::to_string(&files).unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

/// A readable account of how two configs differ, job by job.
fn differences(theirs: &serde_yaml_ng::Value, ours: &serde_yaml_ng::Value) -> Vec<String> {
    let mut out = Vec::new();
    let (Some(a), Some(b)) = (theirs.as_mapping(), ours.as_mapping()) else {
        return vec!["not both mappings".into()];
    };
    for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
        let (x, y) = (a.get(key), b.get(key));
        if x == y {
            continue;
        }
        let name = key.as_str().unwrap_or("?");
        if let (Some(xs), Some(ys)) = (
            x.and_then(|v| v.as_sequence()),
            y.and_then(|v| v.as_sequence()),
        ) && name == "scrape_configs"
        {
            for i in 0..xs.len().max(ys.len()) {
                if xs.get(i) != ys.get(i) {
                    out.push(format!(
                        "scrape_configs[{i}]:\n--- operator\n{}--- reconciler\n{}",
                        serde_yaml_ng::to_string(&xs.get(i)).unwrap(),
                        serde_yaml_ng::to_string(&ys.get(i)).unwrap()
                    ));
                }
            }
        } else {
            out.push(format!(
                "{name}:\n--- operator\n{}--- reconciler\n{}",
                serde_yaml_ng::to_string(&x).unwrap(),
                serde_yaml_ng::to_string(&y).unwrap()
            ));
        }
    }
    out
}

#[tokio::test]
async fn the_reconciler_renders_what_the_real_operator_renders() {
    let cluster = Cluster::start_own();
    let client = cluster.client().await;
    // The operator's own CRDs (with their defaults and pruning), as in a real cluster.
    let crds = operator_dir().join("crds");
    kubectl_run(
        &cluster,
        &["apply", "--server-side", "-f", crds.to_str().unwrap()],
        None,
    );
    kubectl_run(
        &cluster,
        &[
            "wait",
            "--for=condition=Established",
            "crd/prometheuses.monitoring.coreos.com",
            "crd/servicemonitors.monitoring.coreos.com",
            "crd/podmonitors.monitoring.coreos.com",
            "crd/probes.monitoring.coreos.com",
            "crd/prometheusrules.monitoring.coreos.com",
        ],
        None,
    );
    let mut failures = Vec::new();
    // `PROMRELOAD_ORACLE_CASES=a,b` runs only those cases (while working on them).
    let only = std::env::var("PROMRELOAD_ORACLE_CASES").ok();
    let chosen = |name: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|c| c == name))
    };
    for (name, yaml) in CASES.iter().filter(|(name, _)| chosen(name)) {
        let ns = unique(&format!("oracle-{name}"));
        namespace(&client, &ns, &[]).await;
        apply_objects(&cluster, &objects(yaml, &ns));

        let op = cluster.operator(&ns, OPERATORS_RELOADER);
        let theirs = settled_config(&client, &ns, false).await;
        let their_assets = settled_tls_assets(&client, &ns).await;
        let their_rules = rule_config_maps(&client, &ns).await;
        drop(op);
        let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
        for name in ["prometheus-k8s", "prometheus-k8s-tls-assets-0"] {
            secrets
                .delete(name, &DeleteParams::default())
                .await
                .unwrap();
        }
        Api::<ConfigMap>::namespaced(client.clone(), &ns)
            .delete_collection(
                &DeleteParams::default(),
                &ListParams::default().labels("prometheus-name=k8s"),
            )
            .await
            .unwrap();
        let reconciler = cluster.reconciler(&[("RECONCILER_NAMESPACE", &ns)]);
        let ours = settled_config(&client, &ns, true).await;
        let our_assets = settled_tls_assets(&client, &ns).await;
        let our_rules = rule_config_maps(&client, &ns).await;
        drop(reconciler);
        if their_rules != our_rules {
            failures.push(format!(
                "case {name}: rule ConfigMaps differ:\n--- operator\n{}\n--- reconciler\n{}",
                their_rules.join("\n"),
                our_rules.join("\n")
            ));
        }
        if their_assets != our_assets {
            failures.push(format!(
                "case {name}: TLS assets differ: operator {:?}, reconciler {:?}",
                their_assets.keys().collect::<Vec<_>>(),
                our_assets.keys().collect::<Vec<_>>()
            ));
        }

        let parse = |t: &str| serde_yaml_ng::from_str::<serde_yaml_ng::Value>(t).unwrap();
        let diff = differences(&parse(&theirs), &parse(&ours));
        let jobs = parse(&ours)["scrape_configs"]
            .as_sequence()
            .map_or(0, Vec::len);
        let rule_files: usize = our_rules
            .iter()
            .map(|cm| cm.matches(".yaml:").count())
            .sum();
        eprintln!(
            "{name}: {jobs} jobs, {} TLS asset files, {rule_files} rule files, {} differences",
            our_assets.len(),
            diff.len()
        );
        if !diff.is_empty() {
            failures.push(format!("case {name}:\n{}", diff.join("\n")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every field of the upstream Prometheus spec is rendered (a field of our CRD), refused
/// (`PROMETHEUS_UNRENDERED`), a selector of a kind that is not rendered
/// (`PROMETHEUS_OTHER_KINDS`) or outside the config file (`PROMETHEUS_IGNORED`), and nothing
/// else is in those lists: a new upstream field fails here until it is placed.
#[test]
fn every_upstream_prometheus_field_is_rendered_refused_or_not_config() {
    use kube::CustomResourceExt;
    use promreload::reconciler::crd::Prometheus;
    use promreload::reconciler::validate::{
        PROMETHEUS_IGNORED, PROMETHEUS_OTHER_KINDS, PROMETHEUS_UNRENDERED,
    };
    use std::collections::BTreeSet;

    let spec_fields = |crd: &serde_json::Value| -> BTreeSet<String> {
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            .as_object()
            .expect("spec properties")
            .keys()
            .cloned()
            .collect()
    };
    let path = operator_dir().join("crds/monitoring.coreos.com_prometheuses.yaml");
    let upstream: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let upstream = spec_fields(&upstream);
    let rendered = spec_fields(&serde_json::to_value(Prometheus::crd()).unwrap());
    let mut placed = rendered.clone();
    let lists = [
        PROMETHEUS_UNRENDERED,
        PROMETHEUS_OTHER_KINDS,
        PROMETHEUS_IGNORED,
    ];
    for field in lists.iter().flat_map(|l| l.iter()) {
        assert!(
            placed.insert(field.to_string()),
            "{field} is listed twice, or listed and rendered"
        );
    }
    let unplaced: Vec<_> = upstream.difference(&placed).collect();
    let unknown: Vec<_> = placed.difference(&upstream).collect();
    assert!(
        unplaced.is_empty(),
        "upstream fields not placed: {unplaced:?}"
    );
    assert!(unknown.is_empty(), "not upstream fields: {unknown:?}");
    assert!(rendered.len() > 50, "{} rendered", rendered.len());
}
