#!/usr/bin/env bash
# A real Kubernetes node for tests: kubelet (built from Go modules like the control plane) and a
# private containerd + runc (Debian's), joined to a control plane from scripts/control-plane.sh,
# with kube-controller-manager and kube-scheduler from the same build.
# Pods run for real: Secret volumes with the kubelet's `..data` swaps, exec and httpGet probes,
# restarts. Pods get addresses on a private bridge (`prn0`, 10.244.77.0/24, Debian's CNI `bridge`
# and `host-local` plugins; no NAT, no iptables rules), reachable from this host; `hostNetwork`
# Pods work as well. There is no kube-proxy: Pods reach the API server only on the host network.
#
#   scripts/node.sh build                 build (or reuse) the cached kubelet, print its path
#   scripts/node.sh up DIR KUBECONFIG     start containerd and the kubelet with their state in
#                                         DIR, wait for the Node to be Ready; writes DIR/node.env
#   scripts/node.sh image DIR NAME ARCHIVE  import an OCI archive (scripts/image.py) as NAME
#   scripts/node.sh down DIR              delete the node's Pods, stop what `up` started (by
#                                         PID), unmount its volumes, restore the kernel settings
#
# Environment: SYNC_FREQUENCY (the kubelet's syncFrequency, default 1s), NODE_NAME (default
# 127.0.0.1: an IP-shaped name becomes the Node's InternalIP; `--node-ip=127.0.0.1` is refused).
# One node per machine at a time: the kubelet's cgroups (/kubepods) are machine-wide; `up`
# refuses while another node of ours runs.
set -euo pipefail

K8S_VERSION=v1.34.4
CACHE=${PROMRELOAD_CACHE:-$HOME/.cache/promreload}
REV=r2                   # r2: kube-controller-manager and kube-scheduler too
BIN="$CACHE/node-k8s${K8S_VERSION}-$REV"
NODE_NAME=${NODE_NAME:-127.0.0.1}
SYNC_FREQUENCY=${SYNC_FREQUENCY:-1s}
PAUSE_IMAGE=docker.io/local/pause:test
# The kubelet changes these on start (it has no option not to); `down` puts them back.
# The bridge plugin turns on ip_forward for its gateway.
SYSCTLS="vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward"
# The Pods' network: a bridge of this node's own and its subnet (the host is .1).
BRIDGE=prn0
POD_SUBNET=10.244.77.0/24
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/k8s-module.sh
. "$HERE/k8s-module.sh"

log() { echo "node: $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

build() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.node.lock"
  flock 9
  build_locked
  exec 9>&-
}

# The same wrapper module as scripts/control-plane.sh (scripts/k8s-module.sh; the Go caches
# are shared).
build_locked() {
  if [ -x "$BIN/kubelet" ] && [ -x "$BIN/kube-controller-manager" ] && [ -x "$BIN/kube-scheduler" ]; then
    echo "$BIN/kubelet"; return
  fi
  command -v go >/dev/null || { log "Go is needed to build the kubelet"; exit 1; }
  mkdir -p "$BIN"
  local work; work=$(mktemp -d)
  log "building kubelet, kube-controller-manager and kube-scheduler $K8S_VERSION into $BIN (first time only; takes minutes)"
  (
    cd "$work"
    k8s_module promreload-node "$K8S_VERSION" kube-controller-manager kube-scheduler kubelet
    # Stamped, or the Node reports kubeletVersion v0.0.0-master.
    local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
    local ldflags="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1"
    ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
    for cmd in kube-controller-manager kube-scheduler kubelet; do
      CGO_ENABLED=0 go build -ldflags "$ldflags" -o "$BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
      mv "$BIN/$cmd.tmp" "$BIN/$cmd"
    done
  )
  rm -rf "$work"
  echo "$BIN/kubelet"
}

ctr_() { ctr --address "$1/containerd/containerd.sock" -n k8s.io "${@:2}"; }

containerd_up() {
  local dir=$1 c=$1/containerd
  mkdir -p "$c"/{root,state,opt,cni}
  # A bridge with the host as gateway; addresses kept in DIR, so \`down\` forgets them.
  cat > "$c/cni/10-bridge.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "promreload-node", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_SUBNET"}]], "dataDir": "$dir/cni-ipam"}}]}
EOF
  cat > "$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
[grpc]
  address = "$c/containerd.sock"
[ttrpc]
  address = "$c/containerd.sock.ttrpc"
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$c/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    # Never pulled: imported by \`up\`.
    sandbox_image = "$PAUSE_IMAGE"
    # Without CAP_SYS_RESOURCE, runc may not lower oom_score_adj below containerd's own.
    restrict_oom_score_adj = true
    disable_apparmor = true
    # Sandboxes' network namespaces under the state directory, not /var/run/netns.
    netns_mounts_under_state_dir = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$c/cni"
EOF
  containerd --config "$c/config.toml" > "$dir/containerd.log" 2>&1 &
  echo $! > "$dir/containerd.pid"
  for _ in $(seq 300); do
    ctr_ "$dir" version >/dev/null 2>&1 && return 0
    kill -0 "$(cat "$dir/containerd.pid")" 2>/dev/null || { log "containerd died"; tail -20 "$dir/containerd.log" >&2; return 1; }
    sleep 0.1
  done
  log "containerd not answering after 30 s"; return 1
}

image() {
  local dir=$1 name=$2 archive=$3 attempt
  # Checked after the import, and imported again if missing (seen once, not understood).
  for attempt in 1 2 3; do
    ctr_ "$dir" images import "$archive" >/dev/null
    ctr_ "$dir" images ls -q | grep -qxF "$name" && return 0
    log "image $name not found after import $attempt"
    sleep 1
  done
  return 1
}

up() {
  local dir=$1 kubeconfig=$2
  mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
  kubeconfig=$(cd "$(dirname "$kubeconfig")" && pwd)/$(basename "$kubeconfig")
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    if [ -d "$d" ] && [ -n "$(find "$d" -mindepth 1 -type d -print -quit 2>/dev/null)" ]; then
      log "another node's Pods are running ($d): one node per machine"; return 1
    fi
  done
  local kubelet; kubelet=$(build)
  containerd_up "$dir"
  python3 "$HERE/image.py" --name "$PAUSE_IMAGE" --out "$dir/pause.tar" --busybox \
    --entrypoint /bin/busybox sleep 2147483647
  image "$dir" "$PAUSE_IMAGE" "$dir/pause.tar"
  [ -f "$dir/sysctl.orig" ] || for k in $SYSCTLS; do echo "$k=$(sysctl -n "$k")"; done > "$dir/sysctl.orig"
  local ca port healthz
  ca=$(sed -n 's/^ *certificate-authority: *//p' "$kubeconfig" | head -1)
  port=$(free_port); healthz=$(free_port)
  mkdir -p "$dir/kubelet-root"
  cat > "$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$dir/containerd/containerd.sock
address: 127.0.0.1
port: $port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz
# A loopback-only test node: the API server reaches logs and exec anonymously.
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
  x509: {clientCAFile: "$ca"}
authorization: {mode: AlwaysAllow}
syncFrequency: $SYNC_FREQUENCY
nodeStatusUpdateFrequency: 5s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
maxPods: 20
rotateCertificates: false
resolvConf: /etc/resolv.conf
# Else the kubelet adds its chains to the host's iptables.
makeIPTablesUtilChains: false
EOF
  "$kubelet" --config "$dir/kubelet.yaml" --kubeconfig "$kubeconfig" --root-dir "$dir/kubelet-root" \
    --cert-dir "$dir/kubelet-pki" --hostname-override "$NODE_NAME" --v=2 > "$dir/kubelet.log" 2>&1 &
  echo $! > "$dir/kubelet.pid"
  local kubectl; kubectl=$("$HERE/control-plane.sh" build)/kubectl
  for _ in $(seq 600); do
    "$kubectl" --kubeconfig "$kubeconfig" get node "$NODE_NAME" >/dev/null 2>&1 && break
    kill -0 "$(cat "$dir/kubelet.pid")" 2>/dev/null || { log "kubelet died"; tail -30 "$dir/kubelet.log" >&2; return 1; }
    sleep 0.2
  done
  "$kubectl" --kubeconfig "$kubeconfig" wait --for=condition=Ready "node/$NODE_NAME" --timeout=120s >&2
  # The controllers (StatefulSets, Deployments, ServiceAccounts, kube-root-ca.crt, garbage
  # collection) and the scheduler, so workloads run as in a cluster.
  local pki; pki=$(dirname "$ca")
  "$BIN/kube-controller-manager" --kubeconfig "$kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port="$(free_port)" \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$ca" \
    --use-service-account-credentials=false > "$dir/controller-manager.log" 2>&1 &
  echo $! > "$dir/controller-manager.pid"
  "$BIN/kube-scheduler" --kubeconfig "$kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port="$(free_port)" > "$dir/scheduler.log" 2>&1 &
  echo $! > "$dir/scheduler.pid"
  # Ready for Pods once the token controller has made the default ServiceAccount.
  for _ in $(seq 600); do
    "$kubectl" --kubeconfig "$kubeconfig" get serviceaccount default >/dev/null 2>&1 && break
    for name in controller-manager scheduler; do
      kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null || { log "$name died"; tail -20 "$dir/$name.log" >&2; return 1; }
    done
    sleep 0.1
  done
  cat > "$dir/node.env" <<EOF
export KUBECONFIG=$kubeconfig NODE_NAME=$NODE_NAME
EOF
  echo "$kubeconfig" > "$dir/kubeconfig.path"
  log "up: node $NODE_NAME Ready (state in $dir)"
}

# Stops the processes `up` started, by the PIDs it wrote.
stop_pids() {
  local dir=$1 name pid; shift
  for name in "$@"; do
    [ -f "$dir/$name.pid" ] || continue
    pid=$(cat "$dir/$name.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/$name.pid"
  done
}

down() {
  local dir=$1
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  local kubectl
  kubectl=$("$HERE/control-plane.sh" build)/kubectl
  # The controllers first, so they do not replace the Pods deleted below.
  stop_pids "$dir" scheduler controller-manager
  if [ -f "$dir/kubelet.pid" ] && kill -0 "$(cat "$dir/kubelet.pid")" 2>/dev/null && [ -f "$dir/kubeconfig.path" ]; then
    # The kubelet tears its Pods down itself (volumes, containers) while it still runs.
    "$kubectl" --kubeconfig "$(cat "$dir/kubeconfig.path")" delete pods --all-namespaces \
      --field-selector "spec.nodeName=$NODE_NAME" --grace-period=1 --wait=true --timeout=60s >/dev/null 2>&1 || true
  fi
  stop_pids "$dir" kubelet
  if [ -S "$dir/containerd/containerd.sock" ]; then
    # Containers of Pods that were not deleted.
    for c in $(ctr_ "$dir" tasks ls -q 2>/dev/null); do ctr_ "$dir" tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true; done
    for c in $(ctr_ "$dir" tasks ls -q 2>/dev/null); do ctr_ "$dir" tasks delete -f "$c" >/dev/null 2>&1 || true; done
  fi
  stop_pids "$dir" containerd
  # containerd's shims outlive it; ours are the ones with our socket's exact -address.
  local p sock="$dir/containerd/containerd.sock"
  for p in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null < "$p/cmdline" | grep -q "containerd-shim-runc-v2 .*-address $sock\( \|$\)" || continue
    kill "${p#/proc/}" 2>/dev/null || true
  done
  # Pod volumes, rootfs overlays, sandbox shm and the kubelet's bind of its root: deepest first.
  { findmnt -rn -o TARGET | grep -F "$dir/" || true; } | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  # The Pods' bridge (their veths went with their network namespaces).
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE" 2>/dev/null || true
  rm -rf "$dir/cni-ipam"
  if [ -f "$dir/sysctl.orig" ]; then
    while IFS== read -r k v; do sysctl -q -w "$k=$v" || true; done < "$dir/sysctl.orig"
    rm -f "$dir/sysctl.orig"
  fi
  # The kubelet's QoS cgroups (cgroupfs driver), now empty.
  local sub
  for sub in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [ -d "$sub/kubepods" ] && find "$sub/kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  log "down ($dir)"
}

case "${1:-}" in
  build) build ;;
  up) [ $# -eq 3 ] || { echo "usage: $0 up DIR KUBECONFIG" >&2; exit 2; }; up "$2" "$3" ;;
  image) [ $# -eq 4 ] || { echo "usage: $0 image DIR NAME ARCHIVE" >&2; exit 2; }; image "$2" "$3" "$4" ;;
  down) [ $# -eq 2 ] || { echo "usage: $0 down DIR" >&2; exit 2; }; down "$2" ;;
  *) echo "usage: $0 build | up DIR KUBECONFIG | image DIR NAME ARCHIVE | down DIR" >&2; exit 2 ;;
esac
