#!/usr/bin/env bash
# Helm v4, built from its Go module (helm.sh/helm/v4), for the kube-prometheus-stack test
# (tests/it/node/stack.rs): the chart rendered by the real Helm. Cached outside the clone,
# keyed by version; two runs building at once are serialized by a lock.
#
#   scripts/helm.sh build    build (or reuse) and print the path of `helm`
set -euo pipefail

HELM_VERSION=v4.3.2
CACHE=${PROMRELOAD_CACHE:-$HOME/.cache/promreload}
BIN="$CACHE/helm-$HELM_VERSION"

log() { echo "helm.sh: $*" >&2; }

build() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.helm.lock"
  flock 9
  if [ ! -x "$BIN/helm" ]; then
    command -v go >/dev/null || { log "Go is needed to build Helm"; exit 1; }
    log "building Helm $HELM_VERSION into $BIN (first time only; takes minutes)"
    mkdir -p "$BIN"
    CGO_ENABLED=0 GOBIN="$BIN/tmp" go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
    mv "$BIN/tmp/helm" "$BIN/helm"
    rmdir "$BIN/tmp"
  fi
  exec 9>&-
  echo "$BIN/helm"
}

case "${1:-}" in
  build) build ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
