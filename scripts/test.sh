#!/usr/bin/env bash
# The test command: installs what the tests need, then checks formatting, lints, docs and runs
# every test (unit tests, property tests, and the integration tests against a real Prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
echo "== cargo test"
cargo test --locked -- --test-threads="${TEST_THREADS:-4}"
