#!/usr/bin/env bash
# The one test command (README, CI): installs what is missing, then lint, codegen check, buf
# breaking against main, a dry run of `changeset version`, typecheck, build, every package's unit
# and integration tests on real runsc, and a check that the tests left nothing behind on the
# machine. Each step prints its duration. Ends with "tests: N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tooling/scripts/setup.sh

step() {
  local name=$1 started=$SECONDS
  shift
  echo "== $name"
  "$@"
  echo "== $name: $((SECONDS - started))s"
}
step lint pnpm lint
step codegen bash tooling/scripts/check-codegen.sh
step "buf breaking" bash tooling/scripts/check-breaking.sh
step "changeset version (dry run)" bash tooling/scripts/changeset-dry-run.sh
step typecheck pnpm typecheck
step build pnpm build

snap=$(mktemp)
bash tooling/scripts/leak-check.sh snapshot "$snap"
rm -rf .test-results
echo "== test"
rc=0
started=$SECONDS
pnpm exec turbo run test --concurrency=1 --continue || rc=$?
echo "== test: $((SECONDS - started))s"
# The test cluster goes down with its last holder; a holder that was killed cannot release it.
bash tooling/scripts/cluster.sh release || rc=1
echo "== leaks"
bash tooling/scripts/leak-check.sh compare "$snap" || rc=1
rm -f "$snap"
node tooling/scripts/summarize-tests.mjs || rc=1
exit $rc
