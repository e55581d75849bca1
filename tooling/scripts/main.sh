#!/usr/bin/env bash
# The main job: installs what is missing, builds the workspace, starts chalk-server on the embedded
# `local` backend (loopback only, a fresh bearer token, data under CHALK_DATA_DIR or
# /var/lib/chalk), runs the product's quick start against it through the public SDK, and stops the
# server. Containers the quick start makes are stopped by the quick start itself.
#   bash tooling/scripts/main.sh            # as root
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tooling/scripts/setup.sh --without-cluster
pnpm build >/dev/null

data=${CHALK_DATA_DIR:-/var/lib/chalk}
port=${CHALK_PORT:-50051}
mkdir -p "$data"
export CHALK_TOKEN=${CHALK_TOKEN:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
export CHALK_API_SERVER=127.0.0.1:$port

node apps/server/dist/main.js --listen "$CHALK_API_SERVER" --data-dir "$data" >>"$data/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  kill -0 "$server" 2>/dev/null || { tail -20 "$data/server.log" >&2; exit 1; }
  sleep 0.1
done
echo "chalk-server (pid $server) on $CHALK_API_SERVER, data in $data, log in $data/server.log"
echo "== quick start (the first run builds Image.debianSlim(\"3.11\").pipInstall([\"requests\"]); later runs reuse it)"
pnpm --silent --filter @chalk/examples example src/quick-start.ts
