/**
 * `chalk image build`, `chalk image ls` and `chalk run --image-file`: image modules loaded through
 * tsx (.ts) or directly (.mjs), build progress on stderr (stdout stays the result), the full log on
 * a failed build, local files uploaded with progress, and an entrypoint's logs followed.
 */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { oneErrorLine, uniqueName, useCli } from "./fixtures.js";

const cli = useCli();

/** Writes an image module; `body` is the expression after `export default`. */
async function spec(
  name: string,
  body: string,
  header = 'import { Image } from "@chalk/container";',
): Promise<string> {
  const path = join(cli.dir, name);
  await writeFile(path, `${header}\n\nexport default ${body};\n`);
  return path;
}

describe("chalk image build", () => {
  test("a .ts module builds with step progress on stderr and only the image URI on stdout; again it is cached", async () => {
    const nonce = randomBytes(4).toString("hex");
    const file = await spec(
      "build.ts",
      `Image.debianSlim("3.11").env({ NONCE: "${nonce}" as string }).runCommands("for i in 1 2 3; do echo progress-$i-$NONCE; done")`,
    );
    const r = await cli.chalk(["image", "build", file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\S+@sha256:[0-9a-f]{64}\n$/);
    const err = r.stderr;
    expect(err).toMatch(/^step 1\/3 FROM python:3\.11-slim: cached$/m);
    expect(err).toMatch(/^step 3\/3 RUN for i in 1 2 3; .*: building$/m);
    for (const i of [1, 2, 3]) expect(err).toContain(`  progress-${i}-${nonce}\n`);
    expect(err).toMatch(/^step 3\/3 RUN .*: done in [\d.]+m?s$/m);
    expect(err).not.toContain("\u001b[");

    const again = await cli.chalk(["image", "build", file, "-o", "json"]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/^image sha256:[0-9a-f]{12} is cached$/m);
    expect(again.stderr).not.toContain("progress-1");
    const info = JSON.parse(again.stdout) as Record<string, unknown>;
    expect(Object.keys(info)).toEqual([
      "specDigest",
      "status",
      "imageUri",
      "manifestDigest",
      "sizeBytes",
      "layerCount",
      "message",
      "updatedAt",
    ]);
    expect(info).toMatchObject({ status: "exists", imageUri: r.stdout.trim() });

    const ls = await cli.chalk(["image", "ls", "-o", "json"]);
    expect((JSON.parse(ls.stdout) as { specDigest: string }[]).map((i) => i.specDigest)).toContain(
      info.specDigest,
    );
    const table = await cli.chalk(["image", "ls"]);
    expect(table.stdout.split("\n")[0]!.split(/\s+/)).toEqual([
      "SPEC",
      "STATUS",
      "SIZE",
      "LAYERS",
      "UPDATED",
      "URI",
    ]);
    expect(table.stdout).toContain(r.stdout.trim());
  });

  test("a failed build prints the build's whole log and one error line, and exits 1", async () => {
    const nonce = randomBytes(4).toString("hex");
    const file = await spec(
      "fail.mjs",
      `Image.debianSlim("3.11").runCommands("echo before-failure-${nonce}; echo to-stderr-${nonce} >&2; exit 7")`,
      'import { Image } from "@chalk/image";',
    );
    const r = await cli.chalk(["image", "build", file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    const afterLog = r.stderr.slice(r.stderr.indexOf("build log:"));
    expect(afterLog).toContain(`before-failure-${nonce}`);
    expect(afterLog).toContain(`to-stderr-${nonce}`);
    expect(r.stderr.trimEnd().split("\n").at(-1)).toMatch(/^chalk: \[failed_precondition\] /);
  });

  test("a module without an Image, or that cannot load, is a usage error", async () => {
    const notImage = await spec("not-image.ts", '{ image: "python" }');
    const r = await cli.chalk(["image", "build", notImage]);
    expect(r.code).toBe(2);
    expect(oneErrorLine(r.stderr, "invalid_argument")).toBe(true);
    const broken = join(cli.dir, "broken.ts");
    await writeFile(broken, "export default (;\n");
    expect((await cli.chalk(["image", "build", broken])).code).toBe(2);
    expect((await cli.chalk(["image", "build", join(cli.dir, "absent.ts")])).code).toBe(2);
    const txt = join(cli.dir, "spec.txt");
    await writeFile(txt, "");
    expect((await cli.chalk(["image", "build", txt])).code).toBe(2);
  });
});

describe("chalk run --image-file", () => {
  test("builds, uploads local files with progress, starts, and follows the entrypoint's output to its end", async () => {
    const data = join(cli.dir, "data");
    await mkdir(data, { recursive: true });
    const big = randomBytes(3 * 1024 * 1024);
    await writeFile(join(data, "big.bin"), big);
    await writeFile(join(data, "note.txt"), "uploaded note\n");
    const file = await spec(
      "entry.ts",
      `Image.debianSlim("3.11").addLocalDir(${JSON.stringify(data)}, "/srv").entrypoint(["sh", "-c", "cat /srv/note.txt; wc -c < /srv/big.bin; echo entry-done"])`,
    );
    const name = uniqueName("entry");
    const r = await cli.chalk(["run", "--image-file", file, "--name", name]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`uploaded note\n${big.byteLength}\nentry-done\n`);
    expect(r.stderr).toMatch(/^uploading local files \(3\.0 MiB\)$/m);
    expect(r.stderr).toMatch(/^uploaded 2 local files \(3\.0 MiB in /m);
    expect(r.stderr).toContain(`${name} is Succeeded`);
  });

  test("a failing entrypoint ends chalk run with exit 1 after its output", async () => {
    const file = await spec(
      "fails.ts",
      'Image.debianSlim("3.11").entrypoint(["sh", "-c", "echo about-to-fail; exit 9"])',
    );
    const r = await cli.chalk(["run", "--image-file", file, "--name", uniqueName("fails")]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("about-to-fail\n");
    expect(r.stderr).toMatch(/is Failed/);
  });
});
