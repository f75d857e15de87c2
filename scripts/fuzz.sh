#!/usr/bin/env bash
# Runs each cargo-fuzz target for a bounded time (FUZZ_SECONDS each, default 60) with the
# nightly toolchain, from the small committed seeds (copied, so the repository's corpus does not
# grow). Installs cargo-fuzz when it is missing. A crash fails the script and leaves its
# reproducer under fuzz/artifacts/.
#   expand: the streaming $(VAR) expander equals the reference for any input and chunking
#   decode: sniff/gunzip/expand/check/cap/write never panics, respects the cap, keeps the old
#           output on failure
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
# The sanitizer build is slow: keep it outside the clone.
target_dir=${PROMRELOAD_CACHE:-$HOME/.cache/promreload}/fuzz-target

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: no nightly toolchain; the proptest properties in the test suite still run" >&2
  exit 1
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz

for target in expand decode; do
  corpus=$(mktemp -d)
  cp fuzz/seeds/"$target"/* "$corpus"/
  echo "== fuzz $target for ${seconds}s"
  cargo +nightly fuzz run --target-dir "$target_dir" "$target" "$corpus" -- -max_total_time="$seconds" -max_len=65536 2>&1 \
    | grep -E "^(#[0-9]+ +DONE|Done|==[0-9]+==|INFO: seed corpus|SUMMARY|thread)" || true
  status=${PIPESTATUS[0]}
  rm -rf "$corpus"
  [ "$status" -eq 0 ] || { echo "fuzz.sh: $target failed" >&2; exit "$status"; }
done
