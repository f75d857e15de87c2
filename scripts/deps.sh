#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine: Prometheus and promtool
# (Debian's prometheus package), openssl (test certificates), curl (demo), and the real node's
# containerd, runc, CNI plugins, static busybox, Alertmanager and the blackbox exporter; buildah
# and debootstrap.
# Idempotent: does nothing when they are already there.
set -euo pipefail

missing=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
# mkfs.ext4: the hung-filesystem test freezes a loop-mounted ext4 image.
command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
# ip: the walk-through finds the machine's address for its scrape target; unshare: its
# Prometheus gets ServiceAccount files in a private mount namespace.
command -v ip >/dev/null || missing+=(iproute2)
command -v unshare >/dev/null || missing+=(util-linux)
# The real node (scripts/node.sh): containerd and runc, the CNI plugins (bridge, host-local), and a static
# busybox for the sandbox ("pause") image. policy-rc.d (below) keeps the system containerd
# from starting: the node runs a private one.
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || missing+=(containernetworking-plugins)
[ -x /bin/busybox ] || missing+=(busybox-static)
# buildah and debootstrap: the Dockerfile is built for real (scripts/dockerfile.sh).
command -v buildah >/dev/null || missing+=(buildah)
command -v debootstrap >/dev/null || missing+=(debootstrap)
# A real Alertmanager for the operator's Alertmanager Pod on the real node.
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
# A real blackbox exporter, the prober of a Probe on the real node.
command -v prometheus-blackbox-exporter >/dev/null || missing+=(prometheus-blackbox-exporter)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing ${missing[*]}; run as root or: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "deps.sh: installing Debian packages: ${missing[*]}"
apt-get update -qq
# The packages' services are not wanted (tests start their own Prometheus, and the drop-in
# test needs port 9090 free): a temporary policy-rc.d keeps the install from starting them,
# so no process is ever stopped that these scripts did not start. An existing policy is kept.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v openssl >/dev/null \
  && command -v mkfs.ext4 >/dev/null && command -v ip >/dev/null && command -v unshare >/dev/null \
  && command -v containerd >/dev/null && command -v runc >/dev/null && [ -x /usr/lib/cni/bridge ] \
  && command -v prometheus-alertmanager >/dev/null && command -v buildah >/dev/null \
  && command -v prometheus-blackbox-exporter >/dev/null \
  && command -v debootstrap >/dev/null
