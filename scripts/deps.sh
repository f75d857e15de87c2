#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine: Prometheus and promtool
# (Debian's prometheus package), openssl (test certificates) and curl (demo).
# Idempotent: does nothing when they are already there.
set -euo pipefail

missing=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing ${missing[*]}; run as root or: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "deps.sh: installing Debian packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package's service is not wanted: tests start their own Prometheus, and the drop-in test
# needs port 9090 free (the operator's reload URL).
pkill -x prometheus 2>/dev/null || true
command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v openssl >/dev/null
