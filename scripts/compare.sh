#!/usr/bin/env bash
# promreload beside prometheus-config-reloader and VictoriaMetrics' config-reloader on
# identical kubelet-style Secret swaps (scripts/compare.py; about 12 minutes), then with 1, 10
# and 100 MB configs (about 2 minutes). The Go reloaders are built from their Go modules once
# and cached (scripts/anchors.sh).
#
#   scripts/compare.sh [swaps|sizes|output]...    default: all three (output: about 6 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
anchors=$(bash scripts/anchors.sh build)
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --quiet --bin promreload \
  --target x86_64-unknown-linux-gnu
[ $# -gt 0 ] || set -- swaps sizes output
for mode in "$@"; do
  python3 scripts/compare.py target/x86_64-unknown-linux-gnu/release/promreload "$anchors" "$mode"
  echo
done
