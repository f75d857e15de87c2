#!/usr/bin/env bash
# Prometheus with Kubernetes service discovery, for the reconciler and end-to-end tests.
# Debian's prometheus package (used by the sidecar tests) is built without kubernetes_sd_configs,
# so it can neither check nor load the configs prometheus-operator generates. This builds the
# real Prometheus and promtool from the Go module, cached outside the clone, keyed by version.
#
#   scripts/prometheus.sh build    build (or reuse) and print the directory holding both
set -euo pipefail

PROMETHEUS_MODULE_VERSION=v0.313.5   # Prometheus 3.13, prometheus-operator v0.93's default
CACHE=${PROMRELOAD_CACHE:-$HOME/.cache/promreload}
BIN="$CACHE/prometheus-$PROMETHEUS_MODULE_VERSION"

# Two runs building at once would race on the cache: the second waits for the first. The
# lock's descriptor is closed afterwards, so processes started later do not hold it.
build() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.prometheus.lock"
  flock 9
  build_locked
  exec 9>&-
}

build_locked() {
  if [ -x "$BIN/prometheus" ] && [ -x "$BIN/promtool" ]; then
    echo "$BIN"; return
  fi
  command -v go >/dev/null || { echo "prometheus.sh: Go is needed" >&2; exit 1; }
  mkdir -p "$BIN"
  local work; work=$(mktemp -d)
  echo "prometheus.sh: building Prometheus $PROMETHEUS_MODULE_VERSION into $BIN (first time only; takes minutes)" >&2
  (
    cd "$work"
    go mod init promreload-prometheus >/dev/null 2>&1
    go get "github.com/prometheus/prometheus@$PROMETHEUS_MODULE_VERSION" >/dev/null 2>&1
    cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
GO
    go mod tidy >/dev/null 2>&1 || go mod tidy
    CGO_ENABLED=0 go build -o "$BIN/prometheus.tmp" github.com/prometheus/prometheus/cmd/prometheus
    CGO_ENABLED=0 go build -o "$BIN/promtool.tmp" github.com/prometheus/prometheus/cmd/promtool
    mv "$BIN/prometheus.tmp" "$BIN/prometheus"
    mv "$BIN/promtool.tmp" "$BIN/promtool"
  )
  rm -rf "$work"
  echo "$BIN"
}

case "${1:-}" in
  build) build ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
