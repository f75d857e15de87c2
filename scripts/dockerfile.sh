#!/usr/bin/env bash
# Builds the Dockerfile for real with buildah (Debian's), and writes the image as an OCI
# archive for `scripts/node.sh image`: the image the real-node tests run is the Dockerfile's.
#
# No registry is reachable here, so the Dockerfile's base images are local stand-ins, tagged
# with the names it uses and made once:
#   rust:1.95-bookworm       Debian bookworm (debootstrap, minbase, with gcc, libc6-dev and
#                            ca-certificates, as in the official image) plus this machine's
#                            Rust toolchain (its rustc, cargo and standard library) and CA
#                            certificates
#   gcr.io/distroless/static-debian12:nonroot
#                            what distroless's static image holds: /etc/passwd and /etc/group
#                            with nonroot (65532), CA certificates, /tmp, user 65532
# Everything else is the Dockerfile's own: its `apt-get install`, its cargo build (crates from
# crates.io), its COPYs. buildah keeps its layers in the cache, so a later build reuses the
# dependency layer while Cargo.toml and Cargo.lock are unchanged.
#
#   scripts/dockerfile.sh build OUT.tar [NAME]
#       build (NAME: docker.io/local/promreload:test) and write OUT.tar (an OCI archive)
set -euo pipefail

CACHE=${PROMRELOAD_CACHE:-$HOME/.cache/promreload}
ROOT="$CACHE/buildah"
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
RUST_BASE=docker.io/library/rust:1.95-bookworm
STATIC_BASE=gcr.io/distroless/static-debian12:nonroot
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
REV=r1                   # bump to remake the stand-ins

log() { echo "dockerfile.sh: $*" >&2; }
bah() { buildah --root "$ROOT/storage" --runroot "$ROOT/run" --storage-driver overlay "$@"; }

have_image() { bah inspect --type image "$1" >/dev/null 2>&1 && [ -e "$ROOT/$2.$REV" ]; }

rust_base() {
  have_image "$RUST_BASE" rust && return
  log "making the stand-in for $RUST_BASE (first time only; a few minutes)"
  command -v debootstrap >/dev/null || { log "debootstrap is needed (scripts/deps.sh)"; exit 1; }
  local rootfs="$ROOT/bookworm-rootfs"
  if [ ! -e "$rootfs/.complete" ]; then
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates bookworm "$rootfs" "$MIRROR" >"$ROOT/debootstrap.log" 2>&1 \
      || { tail -20 "$ROOT/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb
    touch "$rootfs/.complete"
  fi
  local sysroot; sysroot=$(rustc --print sysroot)
  local c; c=$(bah from scratch)
  bah copy --quiet "$c" "$rootfs" / >/dev/null
  # This machine's CA certificates, as any build here trusts them (crates.io may be reached
  # through a proxy with a CA of its own).
  bah copy --quiet "$c" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt >/dev/null
  # The toolchain without its documentation, at /usr/local/rust (rustc finds its standard
  # library next to itself).
  for d in bin lib libexec; do
    [ -d "$sysroot/$d" ] && bah copy --quiet "$c" "$sysroot/$d" "/usr/local/rust/$d" >/dev/null
  done
  bah config \
    --env PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env CARGO_HOME=/usr/local/cargo \
    --workingdir / "$c"
  bah commit --quiet --rm "$c" "$RUST_BASE" >/dev/null
  touch "$ROOT/rust.$REV"
}

static_base() {
  have_image "$STATIC_BASE" static && return
  log "making the stand-in for $STATIC_BASE"
  local tree; tree=$(mktemp -d)
  mkdir -p "$tree/etc/ssl/certs" "$tree/tmp" "$tree/home/nonroot"
  chmod 1777 "$tree/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$tree/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$tree/etc/group"
  cp /etc/ssl/certs/ca-certificates.crt "$tree/etc/ssl/certs/ca-certificates.crt"
  chown -R 65532:65532 "$tree/home/nonroot"
  local c; c=$(bah from scratch)
  bah copy --quiet "$c" "$tree" / >/dev/null
  rm -rf "$tree"
  bah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --user 65532:65532 --workingdir /home/nonroot "$c"
  bah commit --quiet --rm "$c" "$STATIC_BASE" >/dev/null
  touch "$ROOT/static.$REV"
}

build() {
  local out=$1 name=${2:-docker.io/local/promreload:test}
  command -v buildah >/dev/null || { log "buildah is needed (scripts/deps.sh)"; exit 1; }
  mkdir -p "$ROOT"
  # Two runs building at once would race on the stand-ins and the layers.
  exec 9>"$CACHE/.buildah.lock"
  flock 9
  rust_base
  static_base
  log "building $REPO/Dockerfile as $name"
  bah bud --quiet --layers --pull-never --network host -t "$name" -f "$REPO/Dockerfile" "$REPO" >"$ROOT/bud.log" 2>&1 \
    || { tail -40 "$ROOT/bud.log" >&2; exit 1; }
  rm -f "$out"
  bah push --quiet "$name" "oci-archive:$out:$name" >/dev/null
  exec 9>&-
  echo "$out"
}

case "${1:-}" in
  build) [ $# -ge 2 ] || { echo "usage: $0 build OUT.tar [NAME]" >&2; exit 2; }; build "$2" "${3:-}" ;;
  *) echo "usage: $0 build OUT.tar [NAME]" >&2; exit 2 ;;
esac
