#!/usr/bin/env bash
# Builds the small Debian root filesystem the tests and the demo use, once, and caches it outside
# the repository (never commit a root filesystem). Prints its path. Override the location with
# CHALK_ROOTFS_CACHE. The build is atomic: an interrupted one leaves no half-made rootfs behind.
set -euo pipefail
cache=${CHALK_ROOTFS_CACHE:-/var/cache/chalk}
suite=${CHALK_ROOTFS_SUITE:-bookworm}
dest="$cache/rootfs-$suite-minbase"
if [ -x "$dest/bin/sh" ]; then
  echo "$dest"
  exit 0
fi
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.rootfs-$suite.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "building $suite minbase rootfs in $dest (a minute or two)" >&2
debootstrap --variant=minbase "$suite" "$tmp/rootfs" >"$tmp/log" 2>&1 || {
  tail -20 "$tmp/log" >&2
  exit 1
}
rm -rf "$dest"
mv "$tmp/rootfs" "$dest"
echo "$dest"
