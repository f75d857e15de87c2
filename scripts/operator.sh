#!/usr/bin/env bash
# The real prometheus-operator, as the oracle the reconciler is compared with: built from its
# Go module (never shipped), cached outside the clone, keyed by version. Runs out of cluster
# against the test kube-apiserver (`KUBECONFIG`), where it only generates configs.
#
#   scripts/operator.sh build    build (or reuse) and print the directory holding
#                                `prometheus-operator` and the upstream CRDs (`crds/`)
#
# The main module v0.94.1 is the newest served here; its pkg/client sub-module at v0.94.1 is
# not, and v0.93.1 of it builds with the rest. `go install` cannot work (replace directives):
# a throwaway module pins both. Two runs building at once are serialized by a lock.
set -euo pipefail

OPERATOR_VERSION=v0.94.1
CLIENT_VERSION=v0.93.1
MODULE=github.com/prometheus-operator/prometheus-operator
CACHE=${PROMRELOAD_CACHE:-$HOME/.cache/promreload}
BIN="$CACHE/prometheus-operator-$OPERATOR_VERSION"

log() { echo "operator.sh: $*" >&2; }

# Two runs building at once would race on the cache: the second waits for the first. The
# lock's descriptor is closed afterwards, so processes started later do not hold it.
build() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.prometheus-operator.lock"
  flock 9
  build_locked
  exec 9>&-
}

build_locked() {
  if [ -x "$BIN/prometheus-operator" ] && [ -d "$BIN/crds" ]; then
    echo "$BIN"; return
  fi
  command -v go >/dev/null || { log "Go is needed to build prometheus-operator"; exit 1; }
  mkdir -p "$BIN"
  local work; work=$(mktemp -d)
  log "building prometheus-operator $OPERATOR_VERSION into $BIN (first time only; about 13 minutes)"
  (
    cd "$work"
    cat > go.mod <<EOF
module promreload-operator

go 1.24.0

require $MODULE $OPERATOR_VERSION

replace $MODULE/pkg/client => $MODULE/pkg/client $CLIENT_VERSION
EOF
    cat > tools.go <<'EOF'
//go:build tools

package tools

import _ "github.com/prometheus-operator/prometheus-operator/cmd/operator"
EOF
    go mod tidy >/dev/null 2>&1 || go mod tidy
    CGO_ENABLED=0 go build -o "$BIN/prometheus-operator.tmp" "$MODULE/cmd/operator"
    local dir
    dir=$(go mod download -json "$MODULE@$OPERATOR_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
    rm -rf "$BIN/crds.tmp"
    cp -r "$dir/example/prometheus-operator-crd-full" "$BIN/crds.tmp"
    chmod -R u+w "$BIN/crds.tmp"
    mv "$BIN/crds.tmp" "$BIN/crds"
    mv "$BIN/prometheus-operator.tmp" "$BIN/prometheus-operator"
  )
  rm -rf "$work"
  echo "$BIN"
}

case "${1:-}" in
  build) build ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
