import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, test } from "vitest";
import { localDirEntries } from "../src/upload-source.js";

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("a directory upload leaves out skipped directory names at any depth, and only those", async () => {
  dir = await mkdtemp(join(tmpdir(), "chalk-putdir-"));
  for (const d of [".git", "src/.git", "src/lib", "gitlike"]) await mkdir(join(dir, d), { recursive: true });
  for (const f of [
    ".git/config",
    "src/.git/HEAD",
    "src/lib/a.py",
    "gitlike/b.txt",
    "top.txt",
    ".gitignore",
  ]) {
    await writeFile(join(dir, f), f);
  }
  const all = (await localDirEntries(dir, ["app"])).map((e) => e.path);
  expect(all).toContain("app/.git/config");
  const kept = (await localDirEntries(dir, ["app"], new Set([".git"])))
    .filter((e) => !e.directory)
    .map((e) => e.path);
  expect(kept.sort()).toEqual(["app/.gitignore", "app/gitlike/b.txt", "app/src/lib/a.py", "app/top.txt"]);
});
