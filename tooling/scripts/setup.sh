#!/usr/bin/env bash
# Installs everything this repository needs on a fresh Debian bookworm machine, idempotently, as
# root: system packages (debootstrap, iptables, the OCI registry), pnpm, the workspace's npm
# dependencies, gVisor's runsc and the PTY relay built from the version pinned in tooling/gvisor
# (once per version, cached under /var/cache/chalk/gvisor), the cached test root filesystem, and
# (unless --without-cluster) the Kubernetes test cluster's binaries. Safe to run again; does
# nothing twice. Debian's own `runsc` package is not used: a 2022 build whose `ls -l`/`stat`
# fail; the runtime refuses any runsc but the pinned one.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh must run as root (it installs system packages and runs gVisor sandboxes)" >&2
  exit 1
fi

need=()
# python3, make and g++: node-gyp compiles better-sqlite3 at install time (no prebuilt binary is
# reachable here); nothing uses python3 at run time.
for pair in debootstrap:debootstrap iptables:iptables docker-registry:docker-registry \
  flock:util-linux ip:iproute2 python3:python3 make:make g++:g++ tar:tar skopeo:skopeo umoci:umoci tmux:tmux \
  nft:nftables conntrack:conntrack /usr/lib/cni/bridge:containernetworking-plugins \
  openssl:openssl curl:curl patch:patch git:git tini-static:tini mkfs.ext4:e2fsprogs losetup:mount; do
  bin=${pair%%:*} pkg=${pair##*:}
  if [[ $bin == /* ]]; then [ -x "$bin" ] || need+=("$pkg"); else command -v "$bin" >/dev/null 2>&1 || need+=("$pkg"); fi
done
# Test images need a static busybox (Debian's busybox package is dynamically linked).
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  log "installing system packages: ${need[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi
# The Debian package starts a registry on :5000 through systemd where systemd runs; tests start
# their own on a free loopback port, so that one is not needed.

if ! command -v pnpm >/dev/null 2>&1 || ! pnpm --version | grep -q '^10\.'; then
  log "installing pnpm 10 with npm (corepack's signature check fails on this machine)"
  npm install -g pnpm@10.34.9 >/dev/null
fi

# better-sqlite3 compiles against the headers of the Node.js Debian installed (no prebuilt binary
# or header download is reachable here).
[ -f /usr/include/node/node.h ] && export npm_config_nodedir=/usr
log "installing workspace dependencies"
pnpm install --frozen-lockfile --reporter=append-only

# gVisor from the pinned Go module, built statically (a few minutes on 2 cores the first time for
# each version, then cached). Needs Go >= the go.mod's version (the machine's /usr/local/go).
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; fi
command -v go >/dev/null 2>&1 || { echo "setup.sh: Go is needed to build gVisor (tooling/gvisor/go.mod)" >&2; exit 1; }
runsc=$(bash tooling/gvisor/build.sh runsc)
relay=$(bash tooling/gvisor/build.sh pty-relay)
logwriter=$(bash tooling/gvisor/build.sh log-writer)
bash tooling/gvisor/build.sh fs-agent >/dev/null
version=$("$runsc" --version | awk 'NR == 1 { print $3 }')
[ "$version" = "$(bash tooling/gvisor/build.sh version)" ] || {
  echo "setup.sh: $runsc reports version $version, not the pinned one" >&2
  exit 1
}

bash tooling/scripts/rootfs.sh >/dev/null

# The Kubernetes test cluster's binaries (tooling/cluster/build.sh: Kubernetes, etcd, containerd,
# kube-network-policies, the pause binary, runsc and the gVisor shim), built from their pinned Go
# modules once per version into /var/cache/chalk; a cold build takes about 20 minutes on 2 cores.
if [ "${1:-}" != --without-cluster ]; then
  started=$SECONDS
  bash tooling/cluster/build.sh all
  log "cluster binaries ready in $((SECONDS - started)) s"
fi
log "ready: gVisor runsc $version ($runsc, PTY relay $relay, log writer $logwriter), pnpm $(pnpm --version), rootfs $(bash tooling/scripts/rootfs.sh)"
