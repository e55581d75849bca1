/**
 * The files API through the public SDK (`c.fs`) against a real server and gVisor: binary round
 * trips checked inside the container, a large streamed file, directory operations, watch events,
 * the error codes (each naming the path), and one helper process per container, not one per call.
 */
import { createHash, randomBytes } from "node:crypto";
import { describe, expect } from "vitest";
import { ChalkError, Code } from "../src/index.js";
import { containerTest, TEST_IMAGE, useServer } from "./fixtures.js";

const ctx = useServer();
const test = containerTest(() => ctx.server);
const unique = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
const MiB = 1024 * 1024;

async function errorOf(p: Promise<unknown>): Promise<ChalkError> {
  try {
    await p;
  } catch (err) {
    return ChalkError.from(err);
  }
  throw new Error("expected an error");
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("c.fs", () => {
  test("binary content round-trips byte for byte, as the container sees it", async ({ run }) => {
    const c = await run({ image: TEST_IMAGE, name: unique("fs-bin") });
    const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const data = Buffer.concat([every, randomBytes(MiB), every]);
    const info = await c.fs.writeFile("/tmp/blob.bin", data, { mode: 0o600 });
    expect(info).toMatchObject({ name: "blob.bin", type: "file", size: data.byteLength, mode: 0o600 });
    const inside = await c.exec("sh", "-c", "sha256sum /tmp/blob.bin; stat -c %a /tmp/blob.bin");
    expect(inside.stdoutText).toBe(`${sha256(data)}  /tmp/blob.bin\n600\n`);
    expect(Buffer.from(await c.fs.readFile("/tmp/blob.bin")).equals(data)).toBe(true);
    // Empty files and text too.
    await c.fs.writeFile("/tmp/empty", new Uint8Array());
    expect((await c.fs.readFile("/tmp/empty")).byteLength).toBe(0);
    await c.fs.writeFile("/tmp/t.txt", "héllo\n");
    expect(await c.fs.readFile("/tmp/t.txt", { encoding: "utf8" })).toBe("héllo\n");
  });

  test("a 64 MiB file streams in and out with matching checksums", async ({ run }) => {
    const c = await run({ image: TEST_IMAGE, name: unique("fs-big"), memory: "1Gi" });
    const hash = createHash("sha256");
    async function* source() {
      for (let i = 0; i < 64; i++) {
        const chunk = randomBytes(MiB);
        hash.update(chunk);
        yield chunk;
      }
    }
    const info = await c.fs.writeFile("/tmp/big", source());
    expect(info.size).toBe(64 * MiB);
    const written = hash.digest("hex");
    expect((await c.exec("sha256sum", "/tmp/big")).stdoutText.split(" ")[0]).toBe(written);
    const back = createHash("sha256");
    let bytes = 0;
    for await (const chunk of c.fs.readStream("/tmp/big")) {
      expect(chunk.byteLength).toBeLessThanOrEqual(256 * 1024);
      bytes += chunk.byteLength;
      back.update(chunk);
    }
    expect(bytes).toBe(64 * MiB);
    expect(back.digest("hex")).toBe(written);
  });

  test("mkdir -p, list with stat, rename, remove", async ({ run }) => {
    const c = await run({ image: TEST_IMAGE, name: unique("fs-dirs") });
    await c.fs.mkdir("/work/a/b/c");
    await c.fs.mkdir("/work/a/b/c"); // -p: no error when it exists
    await c.fs.writeFile("/work/a/b/c/one.txt", "1");
    await c.fs.writeFile("/work/a/b/two.txt", "22");
    await c.exec("ln", "-s", "two.txt", "/work/a/b/link");
    const entries = (await c.fs.list("/work/a/b")).sort((x, y) => x.name.localeCompare(y.name));
    expect(entries.map((e) => [e.name, e.type, e.type === "file" ? e.size : undefined])).toEqual([
      ["c", "directory", undefined],
      ["link", "symlink", undefined],
      ["two.txt", "file", 2],
    ]);
    expect(entries[1]?.target).toBe("two.txt");
    expect((await c.fs.stat("/work/a/b/c")).type).toBe("directory");
    await c.fs.rename("/work/a/b/two.txt", "/work/a/moved.txt");
    expect(await c.fs.readFile("/work/a/moved.txt", { encoding: "utf8" })).toBe("22");
    expect((await errorOf(c.fs.stat("/work/a/b/two.txt"))).code).toBe(Code.NotFound);
    await c.fs.remove("/work/a/moved.txt");
    await c.fs.remove("/work/a", { recursive: true });
    expect((await c.exec("sh", "-c", "ls /work")).stdoutText).toBe("");
  });

  test("watch streams create, modify and delete events", async ({ run }) => {
    const c = await run({ image: TEST_IMAGE, name: unique("fs-watch") });
    await c.fs.mkdir("/srv/w");
    await using watch = await c.fs.watch("/srv/w");
    await c.exec("sh", "-c", "touch /srv/w/f && echo more >> /srv/w/f && rm /srv/w/f");
    const seen: string[] = [];
    for await (const e of watch) {
      if (e.path !== "/srv/w/f") continue;
      if (seen.at(-1) !== e.type) seen.push(e.type);
      if (e.type === "delete") break;
    }
    expect(seen).toEqual(["create", "modify", "delete"]);
    // Writes through the files API are seen too (the temporary file is renamed in: a create).
    const again = await c.fs.watch("/srv/w");
    await c.fs.writeFile("/srv/w/g", "x");
    const got: string[] = [];
    for await (const e of again) {
      got.push(`${e.type} ${e.path}`);
      if (e.path === "/srv/w/g") break;
    }
    expect(got.at(-1)).toBe("create /srv/w/g");
    await again.close();
  });

  test("errors carry the usual codes and name the path", async ({ run }) => {
    const c = await run({ image: TEST_IMAGE, name: unique("fs-err") });
    const cases: [() => Promise<unknown>, Code, RegExp][] = [
      [() => c.fs.readFile("/no/such/file"), Code.NotFound, /\/no\/such\/file/],
      [() => c.fs.list("/etc/hostname"), Code.FailedPrecondition, /\/etc\/hostname/],
      [() => c.fs.readFile("/etc"), Code.FailedPrecondition, /\/etc/],
      [() => c.fs.mkdir("/etc", { recursive: false }), Code.AlreadyExists, /\/etc/],
      [() => c.fs.remove("/usr/share"), Code.FailedPrecondition, /\/usr\/share/],
      [() => c.fs.writeFile("/.chalk/x", "read-only mount"), Code.PermissionDenied, /\/\.chalk\/x/],
      [() => c.fs.writeFile("/no/dir/file", "x"), Code.NotFound, /\/no\/dir\/file/],
      [() => c.fs.stat("/a/../b"), Code.InvalidArgument, /path/],
      [() => c.fs.stat("/a//b"), Code.InvalidArgument, /path/],
      [() => c.fs.remove("/", { recursive: true }), Code.InvalidArgument, /root/],
      [() => c.fs.stat("relative"), Code.InvalidArgument, /path/],
    ];
    for (const [p, code, message] of cases) {
      const err = await errorOf(p());
      expect(err.code, err.message).toBe(code);
      expect(err.message).toMatch(message);
    }
    // Nothing half-made: the failed writes left no temporary files.
    expect((await c.exec("sh", "-c", "ls -a /tmp")).stdoutText).not.toMatch(/chalk-/);
    await c.stop();
    expect((await errorOf(c.fs.stat("/etc"))).code).toBe(Code.FailedPrecondition);
  });

  test("one helper process serves every call, not a process per call", async ({ run }) => {
    const c = await run({ image: TEST_IMAGE, name: unique("fs-procs") });
    for (let i = 0; i < 20; i++) await c.fs.stat("/etc/hostname");
    await Promise.all(Array.from({ length: 20 }, (_, i) => c.fs.writeFile(`/tmp/f${i}`, String(i))));
    const agents = await c.exec(
      "sh",
      "-c",
      "for p in /proc/[0-9]*; do readlink $p/exe; done 2>/dev/null | grep -c chalk-fs-agent",
    );
    expect(agents.stdoutText.trim()).toBe("1");
    const values = await Promise.all(
      Array.from({ length: 20 }, (_, i) => c.fs.readFile(`/tmp/f${i}`, { encoding: "utf8" })),
    );
    expect(values).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
  });
});
