#!/usr/bin/env bash
# `buf breaking` of proto/ against main. What "main" means:
# - On a branch (HEAD is not on main): the merge-base of HEAD and main, i.e. the main this branch
#   started from, so a branch is judged by what it changes, not by what main gained since.
# - On main itself (CI's clean clone of main): HEAD's first parent, so each commit that lands is
#   checked against the main before it.
# `main` is the local branch, else origin/main. Without either, or without a parent commit (a
# shallow clone or the first commit), there is nothing to compare with: the check says so and passes.
# Rules: buf.yaml's `breaking` section (FILE).
set -euo pipefail
cd "$(dirname "$0")/../.."
head=$(git rev-parse HEAD)
main=$(git rev-parse -q --verify refs/heads/main || git rev-parse -q --verify refs/remotes/origin/main || true)
base=""
if [ -n "$main" ] && ! git merge-base --is-ancestor "$head" "$main"; then
  base=$(git merge-base "$head" "$main" || true)
fi
if [ -z "$base" ]; then
  base=$(git rev-parse -q --verify "$head^" || true)
fi
if [ -z "$base" ]; then
  echo "buf breaking: no base commit to compare with (shallow clone or first commit); skipped"
  exit 0
fi
echo "buf breaking: proto/ against $(git rev-parse --short "$base") ($(git log -1 --format=%s "$base" | cut -c1-60))"
pnpm exec buf breaking --against "$(git rev-parse --git-common-dir)#ref=$base"
