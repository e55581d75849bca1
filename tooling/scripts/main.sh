#!/usr/bin/env bash
# The main job: installs what is missing, builds the workspace, starts chalk-server on the embedded
# `local` backend (loopback only, TLS with a fresh self-signed certificate, a fresh bearer token
# granted the quick start's environment, data under CHALK_DATA_DIR or /var/lib/chalk), runs the
# product's quick start against it through the public SDK (which verifies the certificate), and stops
# the server. Containers the quick start makes are stopped by the quick start itself.
#   bash tooling/scripts/main.sh            # as root
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tooling/scripts/setup.sh --without-cluster
pnpm build >/dev/null

data=${CHALK_DATA_DIR:-/var/lib/chalk}
port=${CHALK_PORT:-50051}
mkdir -p "$data"
export CHALK_TOKEN=${CHALK_TOKEN:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
export CHALK_ENVIRONMENT=${CHALK_ENVIRONMENT:-default}
# The server takes CHALK_TOKEN only with the environments it may act in: here, the one the quick
# start uses, and no other.
export CHALK_TOKEN_ENVIRONMENTS=$CHALK_ENVIRONMENT
export CHALK_API_SERVER=127.0.0.1:$port

# A self-signed certificate for this loopback run, made fresh each time (valid 30 days). The server
# serves it; the SDK trusts exactly it (CHALK_TLS_CA), so the quick start's calls are verified TLS.
tls="$data/tls"
mkdir -p "$tls" && chmod 700 "$tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj "/CN=chalk-server (main job)" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null
chmod 600 "$tls/key.pem"
export CHALK_TLS_CA="$tls/cert.pem"

node apps/server/dist/main.js --listen "$CHALK_API_SERVER" --data-dir "$data" \
  --tls-cert "$tls/cert.pem" --tls-key "$tls/key.pem" >>"$data/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  kill -0 "$server" 2>/dev/null || { tail -20 "$data/server.log" >&2; exit 1; }
  sleep 0.1
done
echo "chalk-server (pid $server) on $CHALK_API_SERVER (TLS, CA $CHALK_TLS_CA), data in $data, log in $data/server.log"
echo "== quick start (the first run builds Image.debianSlim(\"3.11\").pipInstall([\"requests\"]); later runs reuse it)"
pnpm --silent --filter @chalk/examples example src/quick-start.ts
