#!/usr/bin/env bash
# Builds gVisor from the module version pinned in this directory's go.mod, statically
# (CGO_ENABLED=0: a cgo runsc fails at sandbox start, its ELF interpreter is not in the sandbox's
# chroot), into a cache outside the repository, once per version:
#
#   bash tooling/gvisor/build.sh runsc   # prints the path of runsc
#   bash tooling/gvisor/build.sh shim    # prints the path of containerd-shim-runsc-v1
#   bash tooling/gvisor/build.sh pty-relay # prints the path of chalk-pty-relay (cmd/chalk-pty-relay:
#                                        # @chalk/sandbox's PTY relay, with the same pinned module)
#   bash tooling/gvisor/build.sh log-writer # prints the path of chalk-log-writer (cmd/chalk-log-writer:
#                                        # @chalk/sandbox's size-bounded writer of init logs)
#   bash tooling/gvisor/build.sh fs-agent # prints the path of chalk-fs-agent (cmd/chalk-fs-agent: the
#                                        # files API's helper that runs inside each container)
#   bash tooling/gvisor/build.sh version # prints the pinned version
#
# Cache: ${CHALK_CACHE:-/var/cache/chalk}/gvisor/<version>/ for the binaries, and
# ${CHALK_CACHE}/go/{mod,build} for Go's module and build caches. A binary is rebuilt only when it
# is missing or was built from other patches (patches/*.patch, applied to the shim's source; each
# patch says why it exists in its header).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${CHALK_CACHE:-/var/cache/chalk}
version=$(awk '$1 == "require" && $2 == "gvisor.dev/gvisor" { print $3 }' "$here/go.mod")
[ -n "$version" ] || { echo "build.sh: no gvisor.dev/gvisor version in $here/go.mod" >&2; exit 1; }
what=${1:-runsc}
out="$cache/gvisor/$version"

# Go from the machine's /usr/local/go when it is not on PATH.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; fi
export GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOFLAGS=-mod=mod CGO_ENABLED=0
export GOTOOLCHAIN=local

log() { printf '\033[1;34m[gvisor]\033[0m %s\n' "$*" >&2; }

# build NAME PACKAGE STAMP [SRC]: builds PACKAGE into $out/NAME unless $out/NAME.stamp equals STAMP.
build() {
  local name=$1 pkg=$2 stamp=$3 src=${4:-}
  if [ -x "$out/$name" ] && [ "$(cat "$out/$name.stamp" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  mkdir -p "$out"
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  cp "$here/go.mod" "$here/go.sum" "$here/tools.go" "$work/"
  cp -r "$here/cmd" "$work/"
  if [ -n "$src" ]; then (cd "$work" && go mod edit -replace "gvisor.dev/gvisor=$src"); fi
  log "building $name from gvisor.dev/gvisor@$version (static; a few minutes on 2 cores, once per version)"
  local started=$SECONDS
  (cd "$work" && go build -trimpath \
    -ldflags "-s -w -X gvisor.dev/gvisor/runsc/version.version=$version" \
    -o "$out/$name.tmp" "$pkg")
  mv "$out/$name.tmp" "$out/$name"
  printf '%s\n' "$stamp" >"$out/$name.stamp"
  log "built $out/$name in $((SECONDS - started)) s"
}

# The module's source with patches/*.patch applied, in the cache (keyed by the patches' hash).
patched_source() {
  local hash=$1 dir="$cache/gvisor/src-$version-$hash"
  if [ ! -f "$dir/.complete" ]; then
    (cd "$here" && go mod download gvisor.dev/gvisor) >/dev/null
    local pristine="$GOMODCACHE/gvisor.dev/gvisor@$version"
    rm -rf "$dir" && mkdir -p "$dir"
    cp -r "$pristine/." "$dir/" && chmod -R u+w "$dir"
    for p in "$here"/patches/*.patch; do
      [ -e "$p" ] || continue
      (cd "$dir" && patch -p1 --forward --quiet <"$p") || { echo "build.sh: $p does not apply" >&2; exit 1; }
    done
    touch "$dir/.complete"
  fi
  printf '%s' "$dir"
}

case "$what" in
  version) echo "$version" ;;
  runsc)
    build runsc gvisor.dev/gvisor/runsc "$version"
    echo "$out/runsc"
    ;;
  shim)
    hash=$({ cat "$here"/patches/*.patch 2>/dev/null || true; } | sha256sum | cut -c1-16)
    src=""
    if compgen -G "$here/patches/*.patch" >/dev/null; then src=$(patched_source "$hash"); fi
    build containerd-shim-runsc-v1 gvisor.dev/gvisor/shim "$version+$hash" "$src"
    echo "$out/containerd-shim-runsc-v1"
    ;;
  pty-relay)
    hash=$(cat "$here"/cmd/chalk-pty-relay/*.go | sha256sum | cut -c1-16)
    build chalk-pty-relay chalk.dev/tooling/gvisor/cmd/chalk-pty-relay "$version+$hash"
    echo "$out/chalk-pty-relay"
    ;;
  log-writer)
    hash=$(cat "$here"/cmd/chalk-log-writer/*.go | sha256sum | cut -c1-16)
    build chalk-log-writer chalk.dev/tooling/gvisor/cmd/chalk-log-writer "$version+$hash"
    echo "$out/chalk-log-writer"
    ;;
  fs-agent)
    hash=$(cat "$here"/cmd/chalk-fs-agent/*.go | sha256sum | cut -c1-16)
    build chalk-fs-agent chalk.dev/tooling/gvisor/cmd/chalk-fs-agent "$version+$hash"
    echo "$out/chalk-fs-agent"
    ;;
  *) echo "usage: build.sh runsc|shim|pty-relay|log-writer|fs-agent|version" >&2; exit 2 ;;
esac
