#!/usr/bin/env bash
# Debian's busybox (the dynamically linked package, not busybox-static) for the image's shell:
# prometheus-operator's exec probes run `sh -c 'if [ -x "$(command -v curl)" ] ... elif
# [ -x "$(command -v wget)" ]; then exec wget ...'`, which needs a `command -v` that answers
# with a path. busybox-static's shell prefers its own applets and answers with a bare name.
# The package is unpacked into the cache (not installed: it would replace busybox-static,
# which the node's pause image uses).
#
#   scripts/busybox.sh build    unpack (or reuse) and print the path of its bin/busybox
set -euo pipefail

CACHE=${PROMRELOAD_CACHE:-$HOME/.cache/promreload}
DIR="$CACHE/busybox-deb"

build() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.busybox.lock"
  flock 9
  if [ ! -x "$DIR/bin/busybox" ]; then
    local work; work=$(mktemp -d)
    (
      cd "$work"
      apt-get download busybox >/dev/null 2>&1 || { apt-get update -qq && apt-get download busybox >/dev/null; }
      rm -rf "$DIR.tmp"
      dpkg-deb -x busybox_*.deb "$DIR.tmp"
    )
    rm -rf "$work" "$DIR"
    mv "$DIR.tmp" "$DIR"
  fi
  exec 9>&-
  echo "$DIR/bin/busybox"
}

case "${1:-}" in
  build) build ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
