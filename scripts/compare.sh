#!/usr/bin/env bash
# promreload beside prometheus-config-reloader and VictoriaMetrics' config-reloader, each with
# its defaults, on identical kubelet-style Secret swaps (scripts/compare.py). About 7 minutes
# (SWAPS=40 swaps, GAP=3 s apart, per reloader). The Go reloaders are built from their Go
# modules once and cached (scripts/anchors.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
anchors=$(bash scripts/anchors.sh build)
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --quiet --bin promreload \
  --target x86_64-unknown-linux-gnu
python3 scripts/compare.py target/x86_64-unknown-linux-gnu/release/promreload "$anchors"
