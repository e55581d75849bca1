#!/usr/bin/env bash
# Builds the test cluster's pinned binaries from the Go wrapper modules under modules/, statically
# (CGO_ENABLED=0), into a cache outside the repository, once per version:
#
#   bash tooling/cluster/build.sh kubernetes   # kube-apiserver, kube-controller-manager, kube-scheduler,
#                                              # kubelet, kube-proxy, kubectl
#   bash tooling/cluster/build.sh etcd         # etcd, etcdctl
#   bash tooling/cluster/build.sh containerd   # containerd, ctr
#   bash tooling/cluster/build.sh netpol       # kube-network-policies (patched: modules/netpol/patches)
#   bash tooling/cluster/build.sh pause        # the Pod sandbox's pause binary (modules/pause)
#   bash tooling/cluster/build.sh all          # all of the above, plus runsc and the gVisor shim
#
# Each prints the directory that holds its binaries: ${CHALK_CACHE:-/var/cache/chalk}/<name>/<version>/.
# Go's caches are ${CHALK_CACHE}/go/{mod,build}, shared with tooling/gvisor/build.sh. A directory is
# rebuilt only when a binary is missing or its stamp (version + the wrapper module's go.sum hash)
# differs. Concurrent callers wait for one another (flock). Logs say what is built and how long it
# took.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${CHALK_CACHE:-/var/cache/chalk}
# Go from the machine's /usr/local/go when it is not on PATH.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; fi
export GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOFLAGS=-mod=readonly CGO_ENABLED=0
export GOTOOLCHAIN=local

log() { printf '\033[1;34m[cluster-build]\033[0m %s\n' "$*" >&2; }

# version MODULE_DIR MODULE_PATH: the version the wrapper module requires.
version() {
  local v
  v=$(cd "$here/modules/$1" && go list -m -f '{{.Version}}' "$2")
  [ -n "$v" ] || { echo "build.sh: no version of $2 in modules/$1/go.mod" >&2; exit 1; }
  printf '%s' "$v"
}

# patched_source MODULE_PATH VERSION PATCH_DIR: the module's source with PATCH_DIR/*.patch applied,
# in the cache (keyed by the patches' hash), printed as a directory.
patched_source() {
  local mod=$1 ver=$2 patches=$3 hash dir
  hash=$(cat "$patches"/*.patch | sha256sum | cut -c1-16)
  dir="$cache/src/${mod//\//_}@$ver-$hash"
  if [ ! -f "$dir/.complete" ]; then
    local pristine
    pristine=$(cd "$here/modules" && go mod download -json "$mod@$ver" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -d "$pristine" ] || { echo "build.sh: could not download $mod@$ver" >&2; exit 1; }
    rm -rf "$dir" && mkdir -p "$dir"
    cp -r "$pristine/." "$dir/" && chmod -R u+w "$dir"
    local p
    for p in "$patches"/*.patch; do
      (cd "$dir" && patch -p1 --forward --quiet <"$p") || { echo "build.sh: $p does not apply" >&2; exit 1; }
    done
    touch "$dir/.complete"
  fi
  printf '%s' "$dir"
}

# gobin PKG: the name `go build -o DIR/` gives PKG's binary (its last path element, or the one
# before a major-version suffix such as /v3).
gobin() {
  local b
  b=$(basename "$1")
  if [[ $b =~ ^v[0-9]+$ ]]; then b=$(basename "$(dirname "$1")"); fi
  printf '%s' "$b"
}

# build NAME MODULE_DIR VERSION LDFLAGS TAGS [BIN=]PKG... : builds each PKG (as BIN, default its
# last path element) into $cache/NAME/VERSION/. With PATCH_MODULE=path set, that module is
# replaced by its source with modules/MODULE_DIR/patches/*.patch applied.
build() {
  local name=$1 dir=$2 ver=$3 ldflags=$4 tags=$5
  shift 5
  local out="$cache/$name/$ver" stamp patches="$here/modules/$dir/patches"
  local inputs=("$here/modules/$dir/go.sum" "$here/modules/$dir/go.mod")
  compgen -G "$patches/*.patch" >/dev/null && inputs+=("$patches"/*.patch)
  stamp="$ver $(cat "${inputs[@]}" | sha256sum | cut -c1-16) $tags"
  mkdir -p "$out"
  exec {lock}>"$out/.lock"
  flock "$lock"
  local missing=0 arg bins=()
  for arg in "$@"; do
    if [[ $arg == *=* ]]; then bins+=("${arg%%=*}"); else bins+=("$(gobin "$arg")"); fi
  done
  for arg in "${bins[@]}"; do [ -x "$out/$arg" ] || missing=1; done
  if [ "$missing" = 0 ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
    exec {lock}>&-
    printf '%s\n' "$out"
    return 0
  fi
  log "building $name $ver: ${bins[*]} (static; minutes on 2 cores when cold, once per version)"
  local started=$SECONDS work
  work=$(mktemp -d)
  cp -r "$here/modules/$dir/." "$work/"
  rm -rf "$work/patches"
  local modflag=-mod=readonly
  if [ -n "${PATCH_MODULE:-}" ]; then
    local src
    src=$(patched_source "$PATCH_MODULE" "$ver" "$patches")
    (cd "$work" && go mod edit -replace "$PATCH_MODULE=$src")
    modflag=-mod=mod
  fi
  local pkgs=() i=0
  for arg in "$@"; do pkgs+=("${arg#*=}"); done
  (cd "$work" && GOFLAGS=$modflag nice go build -trimpath -tags "$tags" -ldflags "-s -w $ldflags" \
    -o "$work/bin/" "${pkgs[@]}") || { rm -rf "$work"; exit 1; }
  for arg in "${pkgs[@]}"; do
    mv "$work/bin/$(gobin "$arg")" "$out/${bins[$i]}"
    i=$((i + 1))
  done
  rm -rf "$work"
  printf '%s\n' "$stamp" >"$out/.stamp"
  log "built $name $ver in $((SECONDS - started)) s into $out"
  exec {lock}>&-
  printf '%s\n' "$out"
}

kubernetes() {
  local v
  v=$(version kubernetes k8s.io/kubernetes)
  local minor=${v#v1.}
  minor=${minor%%.*}
  local ld="" key val
  for kv in "gitVersion=$v" gitMajor=1 "gitMinor=$minor" gitTreeState=clean buildDate=1970-01-01T00:00:00Z; do
    key=${kv%%=*} val=${kv#*=}
    ld+=" -X k8s.io/component-base/version.$key=$val -X k8s.io/client-go/pkg/version.$key=$val"
  done
  # The tags Kubernetes' own release build uses (hack/lib/golang.sh).
  build k8s kubernetes "$v" "$ld" selinux,notest,grpcnotrace \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl
}

etcd() {
  local v
  v=$(version etcd go.etcd.io/etcd/server/v3)
  build etcd etcd "$v" "" "" chalk.dev/tooling/cluster/etcd/cmd/etcd go.etcd.io/etcd/etcdctl/v3
}

containerd() {
  local v
  v=$(version containerd github.com/containerd/containerd/v2)
  build containerd containerd "$v" "-X github.com/containerd/containerd/v2/version.Version=$v" \
    no_btrfs,no_devmapper,no_zfs,no_aufs \
    github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/ctr
}

pause() {
  build pause pause v1 "" "" chalk.dev/tooling/cluster/pause/cmd/pause
}

netpol() {
  local v
  v=$(version netpol sigs.k8s.io/kube-network-policies)
  PATCH_MODULE=sigs.k8s.io/kube-network-policies build kube-network-policies netpol "$v" "" "" \
    kube-network-policies=sigs.k8s.io/kube-network-policies/cmd
}

case "${1:-}" in
  kubernetes) kubernetes ;;
  etcd) etcd ;;
  containerd) containerd ;;
  netpol) netpol ;;
  pause) pause ;;
  all)
    started=$SECONDS
    etcd >/dev/null
    containerd >/dev/null
    netpol >/dev/null
    pause >/dev/null
    bash "$here/../gvisor/build.sh" runsc >/dev/null
    bash "$here/../gvisor/build.sh" shim >/dev/null
    kubernetes >/dev/null
    log "all cluster binaries ready in $((SECONDS - started)) s"
    ;;
  *) echo "usage: build.sh kubernetes|etcd|containerd|netpol|pause|all" >&2; exit 2 ;;
esac
