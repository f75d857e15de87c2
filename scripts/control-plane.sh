#!/usr/bin/env bash
# A real Kubernetes control plane for tests, without containers: etcd + kube-apiserver built
# from Go modules, started on free loopback ports with a throwaway CA and an admin identity.
#
#   scripts/control-plane.sh build      build (or reuse) the cached binaries, print their dir
#   scripts/control-plane.sh up DIR     build if needed, start both, wait for /healthz,
#                                       write DIR/kubeconfig (and DIR/env with KUBECONFIG)
#   scripts/control-plane.sh down DIR   stop them
#   scripts/control-plane.sh second DIR             a second kube-apiserver, DIR/kubeconfig-2
#   scripts/control-plane.sh stop-apiserver DIR     stop the first kube-apiserver
#   scripts/control-plane.sh start-apiserver DIR    start it again on its port
#
# Binaries are cached outside the clone, keyed by version:
#   ${PROMRELOAD_CACHE:-$HOME/.cache/promreload}/control-plane-k8s<K8S>-etcd<ETCD>-<REV>/
# (REV changes when the build itself changes).
set -euo pipefail

K8S_VERSION=v1.34.4      # kube 5 / k8s-openapi 0.29 (feature v1_34) support 1.33 to 1.37
ETCD_VERSION=v3.6.16     # the etcd line Kubernetes 1.34 is tested with
CACHE=${PROMRELOAD_CACHE:-$HOME/.cache/promreload}
REV=r2                   # r2: the version is stamped (the API server reports v1.34.4)
BIN="$CACHE/control-plane-k8s${K8S_VERSION}-etcd${ETCD_VERSION}-$REV"

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/k8s-module.sh
. "$HERE/k8s-module.sh"

log() { echo "control-plane: $*" >&2; }

# Two runs building at once would race on the cache: the second waits for the first. The
# lock's descriptor is closed afterwards, so processes started later do not hold it.
build() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.control-plane.lock"
  flock 9
  build_locked
  exec 9>&-
}

build_locked() {
  if [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/etcd" ] && [ -x "$BIN/kubectl" ]; then
    echo "$BIN"; return
  fi
  command -v go >/dev/null || { log "Go is needed to build kube-apiserver and etcd"; exit 1; }
  mkdir -p "$BIN"
  local work; work=$(mktemp -d)
  log "building etcd $ETCD_VERSION and kube-apiserver/kubectl $K8S_VERSION into $BIN (first time only; takes minutes)"
  (
    cd "$work"
    mkdir etcd k8s
    # etcd: its server module is a main package.
    cd etcd
    go mod init promreload-etcd >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1
    CGO_ENABLED=0 go build -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
    mv "$BIN/etcd.tmp" "$BIN/etcd"
    # kube-apiserver and kubectl, through the wrapper module of scripts/k8s-module.sh.
    cd ../k8s
    k8s_module promreload-control-plane "$K8S_VERSION" kube-apiserver kubectl
    # Stamped as a release build does: unstamped, the API server reports v0.0.0-master, and
    # clients that gate features on the server's version (prometheus-operator's EndpointSlice
    # support needs 1.21+) behave as with an ancient cluster.
    local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
    local ldflags=""
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    CGO_ENABLED=0 go build -ldflags "$ldflags" -o "$BIN/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
    CGO_ENABLED=0 go build -ldflags "$ldflags" -o "$BIN/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl
    mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
    mv "$BIN/kubectl.tmp" "$BIN/kubectl"
  )
  rm -rf "$work"
  echo "$BIN"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pki() {
  local d=$1
  mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt \
      -days 7 -subj "/CN=promreload-test-ca" -addext basicConstraints=critical,CA:TRUE \
      -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    leaf() {  # name subject extensions
      printf '%s\n' "$3" > "$1.ext"
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 7 -extfile "$1.ext" 2>/dev/null
    }
    # 10.244.77.1: the gateway of scripts/node.sh's Pod network, where tests/it/node.rs forwards
    # to this API server for Pods that reach it as in a cluster (API mode).
    leaf apiserver "/CN=kube-apiserver" \
      "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,IP:10.244.77.1,DNS:localhost,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth"
    leaf admin "/O=system:masters/CN=admin" "extendedKeyUsage=clientAuth"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

wait_healthy() {
  local dir=$1 port=$2 name=${3:-apiserver}
  for _ in $(seq 600); do
    if curl -fsS --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" \
      "https://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
      return 0
    fi
    for pidfile in "$dir/etcd.pid" "$dir/$name.pid"; do
      kill -0 "$(cat "$pidfile")" 2>/dev/null || { log "$(basename "$pidfile" .pid) died; see $dir/*.log"; tail -20 "$dir"/*.log >&2; return 1; }
    done
    sleep 0.1
  done
  log "kube-apiserver not ready after 60 s; see $dir/$name.log"
  return 1
}

# apiserver DIR NAME PORT: a kube-apiserver on PORT over the control plane's etcd, with
# NAME.pid and NAME.log in DIR (the pki, etcd and service-account keys are shared).
apiserver() {
  local dir=$1 name=$2 port=$3
  local bin; bin=$(build)
  "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$(cat "$dir/etcd.port")" \
    --secure-port "$port" --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --cert-dir "$dir/pki" --tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
    --client-ca-file "$dir/pki/ca.crt" \
    --service-cluster-ip-range 10.0.0.0/24 --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key" \
    --enable-priority-and-fairness=false \
    >>"$dir/$name.log" 2>&1 &
  echo $! > "$dir/$name.pid"
  wait_healthy "$dir" "$port" "$name"
}

stop() {  # stop DIR NAME
  local pidfile=$1/$2.pid
  [ -f "$pidfile" ] || return 0
  kill "$(cat "$pidfile")" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$(cat "$pidfile")" 2>/dev/null || true
  rm -f "$pidfile"
}

up() {
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local bin; bin=$(build)
  pki "$dir/pki"
  local etcd_port peer_port api_port
  etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
  "$bin/etcd" --data-dir "$dir/etcd-data" --name test \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "test=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync --log-level warn >"$dir/etcd.log" 2>&1 &
  echo $! > "$dir/etcd.pid"
  echo "$etcd_port" > "$dir/etcd.port"
  echo "$api_port" > "$dir/apiserver.port"
  apiserver "$dir" apiserver "$api_port"
  cat > "$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $dir/pki/ca.crt
users:
- name: admin
  user:
    client-certificate: $dir/pki/admin.crt
    client-key: $dir/pki/admin.key
contexts:
- name: test
  context: {cluster: test, user: admin, namespace: default}
current-context: test
EOF
  echo "export KUBECONFIG=$dir/kubeconfig PATH=$bin:\$PATH" > "$dir/env"
  log "up: KUBECONFIG=$dir/kubeconfig (kubectl in $bin)"
}

down() {
  local dir=$1
  for name in apiserver apiserver-2 etcd; do stop "$dir" "$name"; done
}

# second DIR: another kube-apiserver over the same etcd (a highly available control plane), with
# its own kubeconfig, DIR/kubeconfig-2: changes made through it while the first is stopped reach
# the first's clients when it is back.
second() {
  local dir=$1 port
  port=$(free_port)
  apiserver "$dir" apiserver-2 "$port"
  sed "s|https://127.0.0.1:$(cat "$dir/apiserver.port")|https://127.0.0.1:$port|" "$dir/kubeconfig" > "$dir/kubeconfig-2"
}

case "${1:-}" in
  build) build ;;
  up) [ -n "${2:-}" ] || { echo "usage: $0 up DIR" >&2; exit 2; }; up "$2" ;;
  down) [ -n "${2:-}" ] || { echo "usage: $0 down DIR" >&2; exit 2; }; down "$2" ;;
  second) [ -n "${2:-}" ] || { echo "usage: $0 second DIR" >&2; exit 2; }; second "$2" ;;
  # The first kube-apiserver stopped, and started again on its port (its clients reconnect).
  stop-apiserver) [ -n "${2:-}" ] || { echo "usage: $0 stop-apiserver DIR" >&2; exit 2; }; stop "$2" apiserver ;;
  start-apiserver) [ -n "${2:-}" ] || { echo "usage: $0 start-apiserver DIR" >&2; exit 2; }; apiserver "$2" apiserver "$(cat "$2/apiserver.port")" ;;
  *) echo "usage: $0 build | up DIR | down DIR | second DIR | stop-apiserver DIR | start-apiserver DIR" >&2; exit 2 ;;
esac
