import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { FileKind } from "@chalk/proto/image/v1";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { Image } from "../src/index.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "chalk-image-files-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("local files in the spec", () => {
  test("editing a copied file changes the digest; editing a volume file does not", async () => {
    const copied = join(dir, "copied.py");
    const mounted = join(dir, "mounted.json");
    await writeFile(copied, "print(1)\n");
    await writeFile(mounted, "{}");
    const image = Image.debianSlim()
      .addLocalFile(copied, "/app/copied.py", { strategy: "copy" })
      .addLocalFile(mounted, "/app/mounted.json");
    const before = await image.digest();
    await writeFile(mounted, '{"changed": true}');
    expect(await image.digest()).toBe(before);
    await writeFile(copied, "print(2)\n");
    expect(await image.digest()).not.toBe(before);
  });

  test("equal content at equal paths gives equal digests from different local directories", async () => {
    await mkdir(join(dir, "a"));
    await mkdir(join(dir, "b"));
    await writeFile(join(dir, "a", "x.txt"), "same");
    await writeFile(join(dir, "b", "x.txt"), "same");
    const a = Image.debianSlim().addLocalFile(join(dir, "a", "x.txt"), "/x.txt", { strategy: "copy" });
    const b = Image.debianSlim().addLocalFile(join(dir, "b", "x.txt"), "/x.txt", { strategy: "copy" });
    expect(await a.digest()).toBe(await b.digest());
  });

  test("addLocalDir copies files, directories and symlinks, skips .git, and keeps the exec bit", async () => {
    await mkdir(join(dir, "src", "pkg"), { recursive: true });
    await mkdir(join(dir, "src", ".git", "objects"), { recursive: true });
    await mkdir(join(dir, "src", "pkg", ".git"), { recursive: true });
    await writeFile(join(dir, "src", ".git", "HEAD"), "ref");
    await writeFile(join(dir, "src", "pkg", ".git", "config"), "x");
    await writeFile(join(dir, "src", "main.py"), "print('hi')\n");
    await writeFile(join(dir, "src", "run.sh"), "#!/bin/sh\n");
    await chmod(join(dir, "src", "run.sh"), 0o750);
    await writeFile(join(dir, "src", "pkg", "__init__.py"), "");
    await symlink("main.py", join(dir, "src", "entry.py"));
    const spec = await Image.debianSlim()
      .addLocalDir(join(dir, "src"), "/app", { strategy: "copy" })
      .toSpec();
    const step = spec.steps[0]!.kind;
    if (step.case !== "addFiles") throw new Error("expected an add_files step");
    const files = step.value.files.map((f) => [f.path, f.kind, f.mode.toString(8), f.linkTarget]);
    expect(files).toEqual([
      ["/app", FileKind.DIRECTORY, "755", ""],
      ["/app/entry.py", FileKind.SYMLINK, "777", "main.py"],
      ["/app/main.py", FileKind.REGULAR, "644", ""],
      ["/app/pkg", FileKind.DIRECTORY, "755", ""],
      ["/app/pkg/__init__.py", FileKind.REGULAR, "644", ""],
      ["/app/run.sh", FileKind.REGULAR, "755", ""],
    ]);
    expect(Buffer.from(step.value.files[2]!.content).toString()).toBe("print('hi')\n");
    const hashOnly = await Image.debianSlim()
      .addLocalDir(join(dir, "src"), "/app", { strategy: "copy" })
      .toSpec({ content: false });
    const s2 = hashOnly.steps[0]!.kind;
    expect(s2.case === "addFiles" && s2.value.files[2]!.content.byteLength).toBe(0);
  });

  test("a missing copied file fails with not_found naming it; the wrong kind with invalid_argument", async () => {
    const missing = Image.debianSlim().addLocalFile(join(dir, "nope.txt"), "/nope.txt", { strategy: "copy" });
    const err = await missing.digest().catch((e: unknown) => e as ChalkError);
    expect(err).toBeInstanceOf(ChalkError);
    expect((err as ChalkError).code).toBe(Code.NotFound);
    expect((err as ChalkError).message).toContain(join(dir, "nope.txt"));
    const wrong = await Image.debianSlim()
      .addLocalFile(dir, "/d", { strategy: "copy" })
      .digest()
      .catch((e: unknown) => e as ChalkError);
    expect((wrong as ChalkError).code).toBe(Code.InvalidArgument);
    const wrongDir = await Image.debianSlim()
      .addLocalDir(join(dir, "f"), "/d", { strategy: "copy" })
      .digest()
      .catch((e: unknown) => e as ChalkError);
    expect((wrongDir as ChalkError).code).toBe(Code.NotFound);
  });
});
