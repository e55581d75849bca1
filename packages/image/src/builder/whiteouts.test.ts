import { ChalkError } from "@chalk/core";
import { describe, expect, test } from "vitest";
import { readTar, type TarHeader, TarType, tarHeader, writeTar } from "./tar.js";
import { ociToOverlay, overlayToOci, type TarOut } from "./whiteouts.js";

async function* from<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

/** Writes entries to a tar, runs a transform over the parsed tar, and returns headers and bodies. */
async function roundTrip(
  entries: TarOut[],
  transform: (e: AsyncIterable<import("./tar.js").TarEntry>) => AsyncIterable<TarOut>,
): Promise<{ header: TarHeader; text: string }[]> {
  const archive = await collect(writeTar(from(entries)));
  const out = await collect(writeTar(transform(readTar(from([archive])))));
  const result: { header: TarHeader; text: string }[] = [];
  for await (const { header, body } of readTar(from([out]))) {
    result.push({ header, text: (await collect(body)).toString() });
  }
  return result;
}

const file = (name: string, text: string, extra: Partial<TarHeader> = {}): TarOut => ({
  header: tarHeader({ name, type: TarType.file, size: Buffer.byteLength(text), ...extra }),
  body: from([Buffer.from(text)]),
});

describe("tar", () => {
  test("entries survive writing and reading: long names, links, modes, owners, xattrs", async () => {
    const long = `${"deep/".repeat(40)}file.txt`;
    const entries: TarOut[] = [
      {
        header: tarHeader({
          name: "d",
          type: TarType.dir,
          mode: 0o1777,
          uid: 1000,
          gid: 1000,
          mtime: 1_700_000_000,
        }),
      },
      file("d/a.txt", "hello", { mode: 0o4755, uname: "root", gname: "root" }),
      file(long, "x".repeat(1000)),
      { header: tarHeader({ name: "d/link", type: TarType.symlink, linkname: `/${"t".repeat(150)}` }) },
      { header: tarHeader({ name: "d/hard", type: TarType.link, linkname: "d/a.txt" }) },
      file("cap", "", { xattrs: { "security.capability": "\x01\x00\x00\x02" } }),
    ];
    const back = await roundTrip(entries, async function* (e) {
      for await (const { header, body } of e)
        yield header.type === TarType.file ? { header, body } : { header };
    });
    expect(back.map((b) => b.header.name)).toEqual(["d", "d/a.txt", long, "d/link", "d/hard", "cap"]);
    expect(back[0]!.header).toMatchObject({
      type: TarType.dir,
      mode: 0o1777,
      uid: 1000,
      gid: 1000,
      mtime: 1_700_000_000,
    });
    expect(back[1]).toMatchObject({ text: "hello", header: { mode: 0o4755, size: 5 } });
    expect(back[2]!.text).toBe("x".repeat(1000));
    expect(back[3]!.header.linkname).toBe(`/${"t".repeat(150)}`);
    expect(back[4]!.header).toMatchObject({ type: TarType.link, linkname: "d/a.txt" });
    expect(back[5]!.header.xattrs).toEqual({ "security.capability": "\x01\x00\x00\x02" });
  });

  test("an entry that climbs out of the archive root is refused", async () => {
    const archive = await collect(writeTar(from([file("../etc/passwd", "x")])));
    await expect(async () => {
      for await (const _ of readTar(from([archive])));
    }).rejects.toThrow(ChalkError);
  });

  test("a truncated archive is reported, not silently shortened", async () => {
    const archive = await collect(writeTar(from([file("a", "y".repeat(2000))])));
    await expect(async () => {
      for await (const { body } of readTar(from([archive.subarray(0, 1024)]))) await collect(body);
    }).rejects.toThrow(/truncated/);
  });
});

describe("overlay upper dir → OCI layer", () => {
  test("whiteout devices become .wh. files, shared whiteout inodes (hard links) too", async () => {
    const out = await roundTrip(
      [
        { header: tarHeader({ name: "", type: TarType.dir }) },
        { header: tarHeader({ name: "etc", type: TarType.dir }) },
        { header: tarHeader({ name: "etc/motd", type: TarType.char, mode: 0, devmajor: 0, devminor: 0 }) },
        { header: tarHeader({ name: "etc/issue", type: TarType.link, linkname: "etc/motd" }) },
        { header: tarHeader({ name: "dev-null", type: TarType.char, devmajor: 1, devminor: 3 }) },
        file("etc/new", "new"),
      ],
      overlayToOci,
    );
    expect(out.map((e) => [e.header.name, e.header.type])).toEqual([
      ["etc", TarType.dir],
      ["etc/.wh.motd", TarType.file],
      ["etc/.wh.issue", TarType.file],
      ["dev-null", TarType.char],
      ["etc/new", TarType.file],
    ]);
    expect(out[4]!.text).toBe("new");
  });

  test("an opaque directory gets a .wh..wh..opq marker and loses overlay's xattrs", async () => {
    const out = await roundTrip(
      [
        {
          header: tarHeader({
            name: "app",
            type: TarType.dir,
            xattrs: { "trusted.overlay.opaque": "y", "trusted.overlay.origin": "zz", "user.keep": "1" },
          }),
        },
        file("app/main.py", "print(1)"),
      ],
      overlayToOci,
    );
    expect(out.map((e) => e.header.name)).toEqual(["app", "app/.wh..wh..opq", "app/main.py"]);
    expect(out[0]!.header.xattrs).toEqual({ "user.keep": "1" });
  });
});

describe("OCI layer → overlay lower dir", () => {
  test(".wh. files become whiteout devices and .wh..wh..opq the opaque xattr", async () => {
    const out = await roundTrip(
      [
        { header: tarHeader({ name: "app", type: TarType.dir, mode: 0o750 }) },
        file("app/.wh..wh..opq", ""),
        file("app/a", "a"),
        file(".wh.gone", ""),
        file("etc/.wh.motd", ""),
      ],
      ociToOverlay,
    );
    expect(out.map((e) => [e.header.name, e.header.type])).toEqual([
      ["app", TarType.dir],
      ["app", TarType.dir],
      ["app/a", TarType.file],
      ["gone", TarType.char],
      ["etc/motd", TarType.char],
    ]);
    expect(out[1]!.header).toMatchObject({ mode: 0o750, xattrs: { "trusted.overlay.opaque": "y" } });
    expect(out[3]!.header).toMatchObject({ devmajor: 0, devminor: 0 });
  });

  test("a layer cannot smuggle overlay xattrs or device nodes", async () => {
    const out = await roundTrip(
      [
        {
          header: tarHeader({ name: "x", type: TarType.dir, xattrs: { "trusted.overlay.redirect": "/etc" } }),
        },
        { header: tarHeader({ name: "kmem", type: TarType.char, devmajor: 1, devminor: 2 }) },
        { header: tarHeader({ name: "sda", type: TarType.block, devmajor: 8, devminor: 0 }) },
      ],
      ociToOverlay,
    );
    expect(out.map((e) => e.header.name)).toEqual(["x"]);
    expect(out[0]!.header.xattrs).toEqual({});
  });

  test("an entry below a symlink of the same layer is refused", async () => {
    await expect(
      roundTrip(
        [
          { header: tarHeader({ name: "evil", type: TarType.symlink, linkname: "/etc" }) },
          file("evil/passwd", "x"),
        ],
        ociToOverlay,
      ),
    ).rejects.toThrow(/below the symlink/);
  });
});
