#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine: Prometheus and promtool.
# Idempotent: does nothing when they are already there.
set -euo pipefail

if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: prometheus/promtool missing; run as root or: apt-get install prometheus" >&2
  exit 1
fi
echo "deps.sh: installing Debian's prometheus package (prometheus + promtool)"
apt-get update -qq
# The package's service is not wanted here: tests start their own Prometheus.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# Do not leave a packaged Prometheus running on :9090 where init systems started one.
pkill -x prometheus 2>/dev/null || true
command -v prometheus >/dev/null && command -v promtool >/dev/null
