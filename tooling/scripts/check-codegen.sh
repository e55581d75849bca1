#!/usr/bin/env bash
# Regenerates the protobuf code and fails when the committed code differs from what the .proto
# files produce.
set -euo pipefail
cd "$(dirname "$0")/../.."
pnpm exec buf lint
pnpm exec buf generate
if ! git diff --quiet --exit-code -- packages/proto/src/gen || [ -n "$(git status --porcelain -- packages/proto/src/gen)" ]; then
  echo "generated code is stale: run 'pnpm codegen' and commit packages/proto/src/gen" >&2
  git status --porcelain -- packages/proto/src/gen >&2
  exit 1
fi
echo "codegen: up to date"
