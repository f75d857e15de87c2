#!/usr/bin/env bash
# Measures promreload and prints one table: binary size, memory (idle and while rendering 1,
# 10 and 100 MB configs), idle CPU and wake-ups, render throughput (criterion, both flate2
# backends), reaction time (200 swaps), and the reconciler's rendering time, memory and
# Secret latency against a real kube-apiserver. Takes about 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
command -v /usr/bin/time >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
cargo build --release --locked --quiet --bins
bin=$PWD/target/release/promreload
rbin=$PWD/target/release/promreload-reconciler
work=$(mktemp -d /dev/shm/promreload-bench.XXXXXX 2>/dev/null || mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
rows=()
row() { rows+=("$(printf '| %-58s | %-30s | %s |' "$1" "$2" "$3")"); echo "  $1: $2" >&2; }
kib_to_mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

echo "== size" >&2
row "release binary promreload (stripped, LTO)" "$(awk -v b="$(stat -c %s "$bin")" 'BEGIN { printf "%.2f MB", b / 1e6 }')" "target < 8 MB"
row "release binary promreload-reconciler" "$(awk -v b="$(stat -c %s "$rbin")" 'BEGIN { printf "%.2f MB", b / 1e6 }')" ""
image=$(( $(stat -c %s "$bin") + $(stat -c %s "$rbin") ))
row "runtime image: both binaries on distroless/cc-debian12" "$(awk -v b="$image" 'BEGIN { printf "%.1f MB + base", b / 1e6 }')" "base not measurable here (no container engine)"

echo "== memory while rendering (init mode, gzip input, many \$(VAR)s)" >&2
python3 - "$work" <<'PY'
import gzip, sys
block = ("- job_name: serviceMonitor/monitoring/node-exporter/0\n  relabel_configs:\n"
         "  - target_label: replica\n    replacement: $(POD_NAME)\n"
         "  - source_labels: [__tmp_hash, __tmp_disable_sharding]\n    regex: $(SHARD);|.+;.+\n    action: keep\n")
for mb in (1, 10, 100):
    body = "global:\n  external_labels:\n    prometheus_replica: $(POD_NAME)\nscrape_configs:\n"
    body += block * ((mb << 20) // len(block) + 1)
    with gzip.open(f"{sys.argv[1]}/config-{mb}.yaml.gz", "wb", compresslevel=6) as f:
        f.write(body.encode())
PY
for mb in 1 10 100; do
  peak=$(POD_NAME=prometheus-k8s-0 SHARD=0 RELOADER_WATCH_INTERVAL=0 RELOADER_MAX_CONFIG_BYTES=200MiB \
    RELOADER_CONFIG_FILE="$work/config-$mb.yaml.gz" RELOADER_CONFIG_ENVSUBST_FILE="$work/out-$mb.yaml" \
    /usr/bin/time -f %M "$bin" 2>&1 >/dev/null | tail -1)
  row "peak RSS rendering a ${mb} MB config" "$(kib_to_mib "$peak")" "target < 16 MiB at 100 MB"
done

echo "== idle daemon (60 s)" >&2
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$port" &
pids+=($!)
mkdir -p "$work/vol/..d1"
cp "$work/config-1.yaml.gz" "$work/vol/..d1/prometheus.yaml.gz"
ln -s ..d1 "$work/vol/..data"; ln -s ..data/prometheus.yaml.gz "$work/vol/prometheus.yaml.gz"
POD_NAME=p SHARD=0 RELOADER_CONFIG_FILE="$work/vol/prometheus.yaml.gz" RELOADER_CONFIG_ENVSUBST_FILE="$work/idle.yaml" \
  RELOADER_RELOAD_URL="http://127.0.0.1:$port/-/reload" RELOADER_LISTEN_ADDRESS=127.0.0.1:0 "$bin" 2>"$work/idle.log" &
daemon=$!; pids+=("$daemon")
sleep 5
rss=$(awk '/VmRSS/ {print $2}' /proc/$daemon/status)
row "idle RSS (after startup, 1 MB config applied)" "$(kib_to_mib "$rss")" "target < 5 MiB"
cpu() { awk '{print $14 + $15}' /proc/$daemon/stat; }
# Per-thread counters, summed over the threads alive at both ends (tokio's idle blocking
# thread exits 10 s after the render; its counters would vanish from the sum).
switches() { for t in /proc/$daemon/task/*; do echo "$(basename "$t") $(awk '/ctxt_switches/ {s += $2} END {print s}' "$t/status")"; done; }
sleep 10
c0=$(cpu); switches > "$work/s0"; sleep 60; c1=$(cpu); switches > "$work/s1"
wakeups=$(join "$work/s0" "$work/s1" | awk '{d += $3 - $2} END {print d + 0}')
row "idle CPU over 60 s" "$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f s", t / hz }')" "target ~0"
row "idle wake-ups (context switches) per minute" "$wakeups" "no busy polling"

echo "== render throughput (criterion)" >&2
thrpt() { grep -A3 "$1" | grep -o 'thrpt: *\[[^]]*\]' | head -1 | sed 's/thrpt: *\[[^ ]* [^ ]* \([^ ]* [^ ]*\) .*/\1/'; }
cargo bench --locked --bench render -- --noplot > "$work/render.txt" 2>&1
row "render 10 MB (gunzip+expand+check+hash+write), miniz_oxide" "$(thrpt "10MB" < "$work/render.txt")" "target >= 200 MB/s"
row "render 100 MB, miniz_oxide" "$(thrpt "100MB" < "$work/render.txt")" ""
cargo bench --locked --features zlib-rs --bench render -- --noplot > "$work/render-zlib.txt" 2>&1
row "render 10 MB, zlib-rs backend" "$(thrpt "10MB" < "$work/render-zlib.txt")" ""
row "render 100 MB, zlib-rs backend" "$(thrpt "100MB" < "$work/render-zlib.txt")" ""

echo "== reaction time" >&2
cargo bench --locked --bench reaction > "$work/reaction.txt" 2>&1
while IFS='|' read -r _ name value; do row "$(echo "$name" | xargs)" "$(echo "$value" | xargs)" ""; done < <(grep '^reaction |' "$work/reaction.txt")

echo "== reconciler" >&2
cargo bench --locked --bench reconciler -- --noplot > "$work/reconciler.txt" 2>&1
for n in 1000 10000; do
  t=$(grep -A1 "$n ServiceMonitors" "$work/reconciler.txt" | grep -o 'time: *\[[^]]*\]' | head -1 | sed 's/time: *\[[^ ]* [^ ]* \([^ ]* [^ ]*\) .*/\1/')
  row "reconciler: render $n ServiceMonitors (pure)" "$t" ""
done
python3 - "$work" <<'PY'
import sys
for n in (1000, 10000):
    docs = ["apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {name: k8s, namespace: monitoring}\n"
            "spec:\n  serviceMonitorSelector: {}\n  serviceMonitorNamespaceSelector: {}\n"]
    for i in range(n):
        docs.append(f"apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {{name: app-{i}, namespace: team-{i % 50}}}\n"
                    f"spec:\n  selector:\n    matchLabels: {{app: app-{i}}}\n  endpoints:\n  - port: web\n  - port: admin\n    path: /admin/metrics\n")
    open(f"{sys.argv[1]}/objects-{n}.yaml", "w").write("---\n".join(docs))
PY
for n in 1000 10000; do
  out=$( { /usr/bin/time -f "%M %e" "$rbin" render "$work/objects-$n.yaml" >/dev/null; } 2>&1 | tail -1)
  row "reconciler: render command, $n ServiceMonitors (parse+render)" "$(kib_to_mib "${out% *}") peak, ${out#* }s" ""
done
cargo test --release --locked --test it reconciler::secret_update_latency -- --ignored --nocapture > "$work/latency.txt" 2>&1 || true
while IFS='|' read -r _ name value; do row "$(echo "$name" | xargs)" "$(echo "$value" | xargs)" ""; done < <(grep '^reconciler |' "$work/latency.txt")

echo
echo "| measurement | value | note |"
echo "|---|---|---|"
printf '%s\n' "${rows[@]}"
