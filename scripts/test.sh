#!/usr/bin/env bash
# The test command: installs what the tests need, then checks formatting, lints, docs and runs
# every test (unit tests, property tests, and the integration tests against a real Prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
# Debian's busybox, the shell the image carries for the operator's exec probes.
bash scripts/busybox.sh build >/dev/null
# Test dependencies built from Go modules, cached outside the clone (minutes on a new machine).
bash scripts/prometheus.sh build >/dev/null
bash scripts/control-plane.sh build >/dev/null
# The kubelet of the real node (tests/it/node.rs), from the same Go module as the control plane.
bash scripts/node.sh build >/dev/null
# The real prometheus-operator, the oracle of tests/it/oracle.rs (about 13 minutes the first time).
bash scripts/operator.sh build >/dev/null
# Helm v4, which renders kube-prometheus-stack for tests/it/node/stack.rs (about 5 minutes the
# first time).
bash scripts/helm.sh build >/dev/null

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings (with the reconciler, and the lean sidecar alone)"
cargo clippy --all-targets --locked -- -D warnings
cargo clippy --all-targets --locked --no-default-features -- -D warnings
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
echo "== control plane for the reconciler tests"
cp_dir=$(mktemp -d /tmp/promreload-cp.XXXXXX)
trap 'bash scripts/control-plane.sh down "$cp_dir"; rm -rf "$cp_dir"' EXIT
bash scripts/control-plane.sh up "$cp_dir"
export PROMRELOAD_TEST_KUBECONFIG="$cp_dir/kubeconfig"

echo "== cargo test (unit tests, and the integration tests in tests/it but the real node's)"
cargo test --locked -- --test-threads="${TEST_THREADS:-4}" --skip node::
# The real node's tests each bring up a kubelet, containerd and the real operator: they run
# alone, after the rest, so nothing else competes with them for the two cores. They run the
# image the Dockerfile builds (buildah; its layers cached, so only what changed is rebuilt).
echo "== the Dockerfile, built (scripts/dockerfile.sh)"
PROMRELOAD_IMAGE_ARCHIVE=$(bash scripts/dockerfile.sh build "$cp_dir/promreload-image.tar")
export PROMRELOAD_IMAGE_ARCHIVE
echo "== cargo test --test it node:: (the real node)"
cargo test --locked --test it -- --test-threads="${TEST_THREADS:-4}" node::

if cargo +nightly --version >/dev/null 2>&1; then
  echo "== fuzz smoke run (scripts/fuzz.sh, ${FUZZ_SECONDS:-10}s per target)"
  FUZZ_SECONDS=${FUZZ_SECONDS:-10} bash scripts/fuzz.sh
fi
