/**
 * An add-files layer copies its parent directories' metadata from the layers below without ever
 * following a symlink those layers hold (a client's earlier layer may link to any host directory).
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { FileEntrySchema, FileKind } from "@chalk/proto/image/v1";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { layerFromFiles } from "../src/builder/layers.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "chalk-layers-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `path mode` of every directory in a tar layer. */
function dirModes(tarPath: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of execFileSync("tar", ["--list", "--verbose", "--file", tarPath], {
    encoding: "utf8",
  }).split("\n")) {
    const parts = line.trim().split(/\s+/);
    if (parts[0]?.startsWith("d")) out[parts.at(-1) ?? ""] = parts[0];
  }
  return out;
}

describe("add-files layers", () => {
  test("parent directories take the lower layers' own metadata, never a symlinked host directory's", async () => {
    const host = join(dir, "host");
    await mkdir(join(host, "sub"), { recursive: true, mode: 0o700 });
    execFileSync("chmod", ["0700", host, join(host, "sub")]);
    const lower = join(dir, "lower");
    await mkdir(join(lower, "tmp"), { recursive: true });
    execFileSync("chmod", ["1777", join(lower, "tmp")]);
    await symlink(host, join(lower, "x"));
    const file = (path: string) =>
      create(FileEntrySchema, {
        path,
        kind: FileKind.REGULAR,
        mode: 0o644,
        content: new TextEncoder().encode("x"),
      });
    const out = join(dir, "layer.tar");
    await layerFromFiles([file("/tmp/a/f"), file("/x/sub/f")], [lower], out, "tar");
    const modes = dirModes(out);
    expect(modes["tmp/"]).toBe("drwxrwxrwt");
    expect(modes["x/"]).toBe("drwxr-xr-x");
    expect(modes["x/sub/"]).toBe("drwxr-xr-x");
  });
});
