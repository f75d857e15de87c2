#!/usr/bin/env bash
# A local Kubernetes cluster to try the whole project on one machine, without a cloud, Docker
# or a registry: the control plane (scripts/control-plane.sh), a real node with its controllers
# (scripts/node.sh), and the images of promreload (the Dockerfile, built by buildah:
# scripts/dockerfile.sh) and of the Prometheus built from Go modules (scripts/image.py).
# Needs root (the kubelet and containerd).
#
#   scripts/cluster.sh up DIR     build what is missing (cached outside the clone), start it
#                                 all, import the images, wait for the Node; writes
#                                 DIR/kubeconfig, DIR/env and DIR/local (deploy/local plus this
#                                 cluster's API address: `kubectl apply -k DIR/local`)
#   scripts/cluster.sh down DIR   stop everything `up` started and restore the node's changes
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

log() { echo "cluster: $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

up() {
  local dir=$1
  mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
  bash "$HERE/deps.sh"
  local prometheus; prometheus=$(bash "$HERE/prometheus.sh" build)
  bash "$HERE/control-plane.sh" up "$dir/control-plane"
  cp "$dir/control-plane/kubeconfig" "$dir/kubeconfig"
  bash "$HERE/node.sh" up "$dir/node" "$dir/kubeconfig"
  bash "$HERE/dockerfile.sh" build "$dir/promreload.tar" docker.io/local/promreload:test >/dev/null
  bash "$HERE/node.sh" image "$dir/node" docker.io/local/promreload:test "$dir/promreload.tar"
  python3 "$HERE/image.py" --name docker.io/local/prometheus:test --out "$dir/prometheus.tar" \
    --add "$prometheus/prometheus=/bin/prometheus" --shell "$(bash "$HERE/busybox.sh" build)" \
    --entrypoint /bin/prometheus
  bash "$HERE/node.sh" image "$dir/node" docker.io/local/prometheus:test "$dir/prometheus.tar"
  # deploy/local with this cluster's API address (Pods reach it on the host network only)
  # and a free port for the reconciler's admin server.
  local api_port admin_port
  api_port=$(sed -n 's|^ *server: https://127.0.0.1:||p' "$dir/kubeconfig" | head -1)
  admin_port=$(free_port)
  mkdir -p "$dir/local"
  cat > "$dir/local/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- $(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$REPO/deploy/local" "$dir/local")
patches:
- target: {kind: Deployment, name: promreload-reconciler}
  patch: |-
    - op: replace
      path: /spec/template/spec/containers/0/env/0
      value: {name: RECONCILER_LISTEN_ADDRESS, value: "127.0.0.1:$admin_port"}
    - op: replace
      path: /spec/template/spec/containers/0/ports/0/containerPort
      value: $admin_port
    - op: add
      path: /spec/template/spec/containers/0/env/-
      value: {name: KUBERNETES_SERVICE_HOST, value: "127.0.0.1"}
    - op: add
      path: /spec/template/spec/containers/0/env/-
      value: {name: KUBERNETES_SERVICE_PORT, value: "$api_port"}
YAML
  local kubectl; kubectl=$(bash "$HERE/control-plane.sh" build)/kubectl
  echo "export KUBECONFIG=$dir/kubeconfig PATH=$(dirname "$kubectl"):\$PATH" > "$dir/env"
  log "up. Next:"
  log "  . $dir/env"
  log "  kubectl apply --server-side -k $REPO/deploy/crds && kubectl wait --for=condition=Established crd --all"
  log "  kubectl apply --server-side -k $dir/local"
  log "  scripts/cluster.sh down $dir    # when done"
}

down() {
  local dir=$1
  [ -d "$dir" ] || return 0
  bash "$HERE/node.sh" down "$dir/node" || true
  bash "$HERE/control-plane.sh" down "$dir/control-plane" || true
  log "down ($dir)"
}

case "${1:-}" in
  up) [ $# -eq 2 ] || { echo "usage: $0 up DIR" >&2; exit 2; }; up "$2" ;;
  down) [ $# -eq 2 ] || { echo "usage: $0 down DIR" >&2; exit 2; }; down "$2" ;;
  *) echo "usage: $0 up DIR | down DIR" >&2; exit 2 ;;
esac
