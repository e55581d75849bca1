#!/usr/bin/env bash
# Installs everything this repository needs on a fresh Debian bookworm machine, idempotently, as
# root: system packages (runsc, debootstrap, iptables, the OCI registry), pnpm, the workspace's
# npm dependencies, and the cached test root filesystem. Safe to run again; does nothing twice.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh must run as root (it installs system packages and runs gVisor sandboxes)" >&2
  exit 1
fi

need=()
for pair in runsc:runsc debootstrap:debootstrap iptables:iptables docker-registry:docker-registry \
  nsenter:util-linux ip:iproute2 python3:python3 tar:tar skopeo:skopeo umoci:umoci openssl:openssl \
  git:git; do
  bin=${pair%%:*} pkg=${pair##*:}
  command -v "$bin" >/dev/null 2>&1 || need+=("$pkg")
done
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

bash tooling/scripts/rootfs.sh >/dev/null
log "ready: runsc $(runsc --version | head -1 | awk '{print $3}'), pnpm $(pnpm --version), rootfs $(bash tooling/scripts/rootfs.sh)"
