#!/usr/bin/env bash
# The one test command (README, CI): installs what is missing, then lint, codegen check,
# typecheck, build, every package's unit and integration tests on real runsc, and a check that the
# tests left nothing behind on the machine. Ends with "tests: N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tooling/scripts/setup.sh

echo "== lint"; pnpm lint
echo "== codegen"; bash tooling/scripts/check-codegen.sh
echo "== typecheck"; pnpm typecheck
echo "== build"; pnpm build

snap=$(mktemp)
bash tooling/scripts/leak-check.sh snapshot "$snap"
rm -rf .test-results
echo "== test"
rc=0
pnpm exec turbo run test --concurrency=1 --continue || rc=$?
# The test cluster goes down with its last holder; a holder that was killed cannot release it.
bash tooling/scripts/cluster.sh release || rc=1
echo "== leaks"
bash tooling/scripts/leak-check.sh compare "$snap" || rc=1
rm -f "$snap"
node tooling/scripts/summarize-tests.mjs || rc=1
exit $rc
