/**
 * `addLocalDir` reproduces the local tree in the container (issue 10, "Files and /tmp"), through the
 * public SDK against a real server and real gVisor: regular files with their bytes and permission
 * bits (empty ones included), odd names, nested directories (empty ones included, with their
 * permission bits), and symlinks by the documented
 * policy: a symlink to a regular file uploads that file's content as a regular file; a symlink to
 * a directory is not followed (no loops, nothing outside the tree); a dangling symlink is left
 * out. The upload mount is read-only.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect } from "vitest";
import { Image } from "../src/index.js";
import { containerTest, useServer } from "./fixtures.js";

const ctx = useServer(["--default-memory", "512Mi"]);
const test = containerTest(() => ctx.server);
const local = mkdtempSync(join(tmpdir(), "chalk-upload-tree-"));
afterAll(() => rmSync(local, { recursive: true, force: true }));

/**
 * Names a shell, a URL or a careless script would trip on. (Volume paths refuse backslashes and
 * control characters with invalid_argument, so those are not here.)
 */
const ODD = ["sp ace", "ünïcödé", "-dash", "quote'\"", "#hash", ".hidden", "per%cent", "x".repeat(200)];

function plant(): Map<string, { mode: number; content: string }> {
  const expected = new Map<string, { mode: number; content: string }>();
  const file = (rel: string, content: string, mode: number) => {
    writeFileSync(join(local, rel), content);
    chmodSync(join(local, rel), mode);
    expected.set(rel, { mode, content });
  };
  mkdirSync(join(local, "nested", "deeper"), { recursive: true });
  file("empty", "", 0o644);
  file("run.sh", "#!/bin/sh\necho ran\n", 0o755);
  file("secret-ish", "only me\n", 0o600);
  file("nested/deeper/leaf.txt", "leaf\n", 0o640);
  for (const [i, name] of ODD.entries()) file(name, `odd ${i}\n`, 0o644);
  symlinkSync("run.sh", join(local, "link-to-file"));
  expected.set("link-to-file", { mode: 0o755, content: "#!/bin/sh\necho ran\n" });
  symlinkSync("nested", join(local, "link-to-dir"));
  symlinkSync("/nonexistent/target", join(local, "dangling"));
  return expected;
}

describe("addLocalDir reproduces the tree", () => {
  test("files with their bytes and modes, empty files, odd names, nested dirs, and symlinks by the policy", async ({
    run,
  }) => {
    const expected = plant();
    const c = await run({ image: Image.debianSlim("3.11").addLocalDir(local, "/app"), name: "upload-tree" });
    // One line per regular file: mode, size, NUL-free path relative to /app (find's %P).
    const listing = await c.exec("find", "/app", "-type", "f", "-printf", "%m %s %P\\0");
    const seen = new Map(
      listing.stdoutText
        .split("\0")
        .filter((l) => l !== "")
        .map((l) => {
          const [mode, size, ...path] = l.split(" ");
          return [path.join(" "), { mode: Number.parseInt(mode as string, 8), size: Number(size) }] as const;
        }),
    );
    expect([...seen.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [rel, want] of expected) {
      expect(seen.get(rel), rel).toEqual({ mode: want.mode, size: Buffer.byteLength(want.content) });
      expect((await c.exec("cat", `/app/${rel}`)).stdoutText, rel).toBe(want.content);
    }
    expect((await c.exec("/app/run.sh")).stdoutText).toBe("ran\n");
    // Neither the directory symlink nor the dangling one arrives, as anything.
    const others = await c.exec("find", "/app", "-not", "-type", "f", "-not", "-type", "d");
    expect(others.stdoutText).toBe("");
    // The upload mount is read-only: a write fails with the kernel's EROFS.
    const write = await c.exec("sh", "-c", "echo x > /app/new");
    expect(write.exitCode).not.toBe(0);
    expect(write.stderrText).toMatch(/Read-only file system/);
  });

  test("empty directories arrive too, with their modes", async ({ run }) => {
    const dir = mkdtempSync(join(tmpdir(), "chalk-upload-empty-"));
    try {
      mkdirSync(join(dir, "empty-dir", "inner-empty"), { recursive: true });
      mkdirSync(join(dir, "private-empty"));
      chmodSync(join(dir, "private-empty"), 0o700);
      chmodSync(join(dir, "empty-dir", "inner-empty"), 0o750);
      writeFileSync(join(dir, "keep"), "k");
      const c = await run({ image: Image.debianSlim("3.11").addLocalDir(dir, "/app"), name: "upload-empty" });
      const dirs = await c.exec("find", "/app", "-mindepth", "1", "-type", "d", "-printf", "%m %P\\n");
      expect(
        dirs.stdoutText
          .split("\n")
          .filter((l) => l !== "")
          .sort(),
      ).toEqual(["700 private-empty", "750 empty-dir/inner-empty", "755 empty-dir"]);
      expect((await c.exec("cat", "/app/keep")).stdoutText).toBe("k");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
