#!/usr/bin/env bash
# The Go reloaders promreload is compared with, built from their Go modules as benchmark
# anchors (never shipped), cached outside the clone, keyed by version:
#   prometheus-operator v0.94.1 cmd/prometheus-config-reloader (its pkg/client sub-module
#     pinned to v0.93.1, the newest served here, as in scripts/operator.sh), and
#   VictoriaMetrics operator v0.74.1 cmd/config-reloader (v0.75 is not served here).
#
#   scripts/anchors.sh build    build (or reuse) and print the directory holding both
#
# Two runs building at once are serialized by a lock.
set -euo pipefail

PO_VERSION=v0.94.1
PO_CLIENT_VERSION=v0.93.1
PO_MODULE=github.com/prometheus-operator/prometheus-operator
VM_VERSION=v0.74.1
VM_MODULE=github.com/VictoriaMetrics/operator
CACHE=${PROMRELOAD_CACHE:-$HOME/.cache/promreload}
BIN="$CACHE/anchors-po$PO_VERSION-vm$VM_VERSION"

log() { echo "anchors.sh: $*" >&2; }

build() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.anchors.lock"
  flock 9
  build_locked
  exec 9>&-
}

build_locked() {
  if [ -x "$BIN/prometheus-config-reloader" ] && [ -x "$BIN/vm-config-reloader" ]; then
    echo "$BIN"; return
  fi
  command -v go >/dev/null || { log "Go is needed to build the anchors"; exit 1; }
  mkdir -p "$BIN"
  local work; work=$(mktemp -d)
  log "building the Go reloaders into $BIN (first time only)"
  (
    # prometheus-operator's module has replace directives: a throwaway module pins it.
    mkdir -p "$work/po" && cd "$work/po"
    cat > go.mod <<GOMOD
module promreload-anchors

go 1.24.0

require $PO_MODULE $PO_VERSION

replace $PO_MODULE/pkg/client => $PO_MODULE/pkg/client $PO_CLIENT_VERSION
GOMOD
    cat > tools.go <<'GO'
//go:build tools

package tools

import _ "github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader"
GO
    go mod tidy >/dev/null 2>&1 || go mod tidy
    CGO_ENABLED=0 go build -ldflags "-s -w" -o "$BIN/prometheus-config-reloader.tmp" "$PO_MODULE/cmd/prometheus-config-reloader"
    mv "$BIN/prometheus-config-reloader.tmp" "$BIN/prometheus-config-reloader"
  )
  (
    # VictoriaMetrics' module replaces its api sub-module with ./api: built in a copy of it.
    local dir; dir=$(cd "$work" && go mod download -json "$VM_MODULE@$VM_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    cp -r "$dir" "$work/vm" && chmod -R u+w "$work/vm" && cd "$work/vm"
    CGO_ENABLED=0 go build -ldflags "-s -w" -o "$BIN/vm-config-reloader.tmp" ./cmd/config-reloader
    mv "$BIN/vm-config-reloader.tmp" "$BIN/vm-config-reloader"
  )
  rm -rf "$work"
  echo "$BIN"
}

case "${1:-}" in
  build) build ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
