#!/usr/bin/env bash
# `changeset version` as a dry run: applies the pending changesets to a throwaway copy of the
# repository's tracked files and prints the versions and changelogs they would produce. Fails when a
# changeset is malformed or names a package that does not exist. The working tree is not touched.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/chalk-changeset-dry-run.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Tracked and new files as they are in the working tree (a file deleted there is left out).
git ls-files -z --cached --others --exclude-standard --deduplicate |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  xargs -0 cp --parents -t "$tmp"
ln -s "$repo/node_modules" "$tmp/node_modules"
(cd "$tmp" && node "$repo/node_modules/@changesets/cli/bin.js" version >"$tmp/.log" 2>&1) || {
  cat "$tmp/.log" >&2
  exit 1
}
pending=$(find "$repo/.changeset" -name '*.md' ! -name README.md | wc -l)
echo "changeset version (dry run): $pending pending changesets would release:"
while IFS= read -r manifest; do
  rel=${manifest#"$tmp"/}
  before=$(node -p "require('$repo/$rel').version")
  after=$(node -p "require('$manifest').version")
  name=$(node -p "require('$manifest').name")
  if [ "$before" != "$after" ]; then
    lines=$(wc -l <"$(dirname "$manifest")/CHANGELOG.md")
    echo "  $name $before -> $after (CHANGELOG.md: $lines lines)"
  fi
done < <(find "$tmp/packages" "$tmp/apps" -maxdepth 2 -name package.json)
