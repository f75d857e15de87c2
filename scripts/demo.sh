#!/usr/bin/env bash
# The main job, on one machine: a real Prometheus on loopback, promreload's init container and
# sidecar on a directory laid out exactly like a kubelet-mounted Secret, one Secret update, and
# Prometheus's loaded job list before and after.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cargo build --release --locked --quiet --bin promreload
bin="$PWD/target/release/promreload"

work=$(mktemp -d /tmp/promreload-demo.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
prom_port=$(free_port)
admin_port=$(free_port)
secret="$work/etc/prometheus/config"
out="$work/etc/prometheus/config_out/prometheus.env.yaml"
mkdir -p "$secret" "$(dirname "$out")"

# Writes a config with the given jobs the way prometheus-operator renders one.
config() {
  printf 'global:\n  scrape_interval: 15s\n  external_labels:\n    prometheus: demo/k8s\n    prometheus_replica: $(POD_NAME)\nscrape_configs:\n'
  for job in "$@"; do
    printf -- '- job_name: %s\n  static_configs:\n  - targets: ["127.0.0.1:%s"]\n  relabel_configs:\n  - source_labels: [__address__]\n    target_label: shard\n    replacement: $(SHARD)\n' "$job" "$prom_port"
  done
}

# Projects prometheus.yaml.gz as the kubelet's AtomicWriter does: new timestamped dir,
# ..data_tmp -> it, rename over ..data, key symlink into ..data, old dir removed.
n=0
publish() {
  n=$((n + 1))
  local ts="..2026_11_26_00_00_00.$(printf %09d $n)" old
  old=$(readlink "$secret/..data" 2>/dev/null || true)
  mkdir "$secret/$ts"
  config "$@" | gzip -n > "$secret/$ts/prometheus.yaml.gz"
  ln -sfn "$ts" "$secret/..data_tmp"
  mv -T "$secret/..data_tmp" "$secret/..data"
  [ -e "$secret/prometheus.yaml.gz" ] || ln -s ..data/prometheus.yaml.gz "$secret/prometheus.yaml.gz"
  [ -z "$old" ] || rm -rf "${secret:?}/$old"
}

jobs_loaded() {
  curl -fsS "http://127.0.0.1:$prom_port/api/v1/status/config" | python3 -c '
import json, sys
cfg = json.load(sys.stdin)["data"]["yaml"]
print(" ".join(l.split(":", 1)[1].strip() for l in cfg.splitlines() if l.lstrip("- ").startswith("job_name:")))'
}

export POD_NAME=prometheus-k8s-0 SHARD=0
export RELOADER_CONFIG_FILE="$secret/prometheus.yaml.gz" RELOADER_CONFIG_ENVSUBST_FILE="$out"
export RELOADER_RELOAD_URL="http://127.0.0.1:$prom_port/-/reload"

echo "== Secret volume with one ServiceMonitor job"
publish serviceMonitor/default/node-exporter/0
echo "== init container: promreload with RELOADER_WATCH_INTERVAL=0"
RELOADER_WATCH_INTERVAL=0 "$bin"

echo "== Prometheus on 127.0.0.1:$prom_port, loading $out"
prometheus --config.file="$out" --web.listen-address="127.0.0.1:$prom_port" --web.enable-lifecycle \
  --storage.tsdb.path="$work/data" --log.level=warn 2>"$work/prometheus.log" &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$prom_port/-/ready" >/dev/null 2>&1 && break; sleep 0.1; done

echo "== sidecar: promreload on 127.0.0.1:$admin_port"
RELOADER_LISTEN_ADDRESS="127.0.0.1:$admin_port" "$bin" 2>"$work/promreload.log" &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$admin_port/metrics" | grep -q '^reloader_last_reload_successful 1' && break; sleep 0.1
done

echo "jobs before: $(jobs_loaded)"
# The startup reload just happened; let RELOADER_DELAY_INTERVAL (1s) pass so the update below
# is an isolated change, applied at once rather than coalesced into the next window.
sleep 1
echo "== Secret update: a second ServiceMonitor appears"
start=$(date +%s%N)
publish serviceMonitor/default/node-exporter/0 serviceMonitor/monitoring/kube-state-metrics/0
for _ in $(seq 200); do
  jobs_loaded | grep -q kube-state-metrics && break; sleep 0.01
done
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "jobs after:  $(jobs_loaded)"
echo "Prometheus had the new job ${elapsed_ms} ms after the ..data swap (polled every 10 ms)"
echo "external labels: $(grep -A2 external_labels "$out" | tail -2 | tr -s ' ' | tr '\n' ' ')"
echo
echo "== promreload /metrics (excerpt)"
curl -fsS "http://127.0.0.1:$admin_port/metrics" | grep -E '^reloader_(reloads_total|reloads_failed_total|last_reload_successful|config_apply_operations_total|watch_events_total)'
echo "== promreload log"
cat "$work/promreload.log"
