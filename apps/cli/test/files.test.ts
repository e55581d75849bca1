/**
 * `chalk volume …`, `chalk secret …` and `chalk cp` against a real server: listings in tables and
 * JSON, uploads and downloads with progress, secret values only from stdin, and copies into and out
 * of a container that cannot place files outside their destination.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { oneErrorLine, TEST_IMAGE, uniqueName, useCli } from "./fixtures.js";

const cli = useCli();

describe("chalk volume", () => {
  test("create, ls, put (file and directory, with progress), ls-files, get, rm", async () => {
    const vol = uniqueName("vol");
    expect(await cli.chalk(["volume", "create", vol])).toEqual({ code: 0, stdout: `${vol}\n`, stderr: "" });
    const again = await cli.chalk(["volume", "create", vol]);
    expect(again.code).toBe(1);
    expect(oneErrorLine(again.stderr, "already_exists")).toBe(true);

    const ls = await cli.chalk(["volume", "ls", "-o", "json"]);
    const vols = JSON.parse(ls.stdout) as Record<string, unknown>[];
    expect(Object.keys(vols.find((v) => v.name === vol)!)).toEqual(["name", "createdAt"]);
    expect((await cli.chalk(["volume", "ls"])).stdout).toMatch(new RegExp(`^${vol}\\s`, "m"));

    const src = join(cli.dir, "tree");
    await mkdir(join(src, "sub"), { recursive: true });
    const big = randomBytes(2 * 1024 * 1024 + 5);
    await writeFile(join(src, "big.bin"), big);
    await writeFile(join(src, "sub", "a.txt"), "alpha\n");
    const putDir = await cli.chalk(["volume", "put", vol, src, "tree"]);
    expect(putDir.code, putDir.stderr).toBe(0);
    expect(putDir.stdout).toBe("");
    expect(putDir.stderr).toMatch(/^uploading .*tree \(2\.0 MiB\)$/m);
    expect(putDir.stderr).toMatch(new RegExp(`^uploaded 2 files to ${vol}:tree \\(2\\.0 MiB in `, "m"));
    const putFile = await cli.chalk(["volume", "put", vol, join(src, "sub", "a.txt")]);
    expect(putFile.code).toBe(0);

    const files = JSON.parse((await cli.chalk(["volume", "ls-files", vol, "-o", "json"])).stdout) as Record<
      string,
      unknown
    >[];
    expect(files.map((f) => [f.path, f.size])).toEqual([
      ["a.txt", 6],
      ["tree/big.bin", big.byteLength],
      ["tree/sub/a.txt", 6],
    ]);
    expect(Object.keys(files[0]!)).toEqual(["path", "size", "mode", "modifiedAt"]);
    const under = await cli.chalk(["volume", "ls-files", vol, "tree/sub/"]);
    expect(under.stdout.split("\n")[0]!.split(/\s+/)).toEqual(["PATH", "SIZE", "MODE", "MODIFIED"]);
    expect(under.stdout).toMatch(/^tree\/sub\/a\.txt\s+6 B\s+0644\s/m);

    const out = join(cli.dir, "out");
    const get = await cli.chalk(["volume", "get", vol, "tree", out]);
    expect(get.code, get.stderr).toBe(0);
    expect(await readFile(join(out, "big.bin"))).toEqual(big);
    expect(await readFile(join(out, "sub", "a.txt"), "utf8")).toBe("alpha\n");
    expect(get.stderr).toMatch(/^downloaded 2 files to /m);
    const one = await cli.chalk(["volume", "get", vol, "tree/sub/a.txt", "-"]);
    expect(one).toEqual({ code: 0, stdout: "alpha\n", stderr: "" });
    const missing = await cli.chalk(["volume", "get", vol, "nope.txt", join(cli.dir, "x")]);
    expect(missing.code).toBe(1);
    expect(oneErrorLine(missing.stderr, "not_found")).toBe(true);

    const rm = await cli.chalk(["volume", "rm", vol, uniqueName("ghost")]);
    expect(rm.code).toBe(1);
    expect(rm.stdout).toBe(`${vol}\n`);
    expect((await cli.chalk(["volume", "ls"])).stdout).not.toContain(vol);
  });
});

describe("chalk secret", () => {
  test("set reads the value from stdin (never argv), ls shows names only, rm deletes", async () => {
    const name = `CLI_${randomBytes(3).toString("hex").toUpperCase()}`;
    const value = `value-${randomBytes(6).toString("hex")}`;
    const set = await cli.chalk(["secret", "set", name], { input: `${value}\n` });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout + set.stderr).not.toContain(value);
    const ls = await cli.chalk(["secret", "ls", "-o", "json"]);
    const entry = (JSON.parse(ls.stdout) as Record<string, unknown>[]).find((s) => s.name === name)!;
    expect(Object.keys(entry)).toEqual(["name", "createdAt", "updatedAt"]);
    expect(ls.stdout).not.toContain(value);
    expect((await cli.chalk(["secret", "ls"])).stdout).toMatch(new RegExp(`^${name}\\s`, "m"));

    // The value reaches a container exactly, without the newline that ended it on stdin.
    const r = await cli.chalk([
      "run",
      TEST_IMAGE,
      "--secret",
      name,
      "--",
      "sh",
      "-c",
      `printf '%s' "$${name}"`,
    ]);
    expect(r.stdout).toBe(value);
    // Never in the server's logs either.
    expect(cli.server.logs.join("\n")).not.toContain(value);

    expect((await cli.chalk(["secret", "set", name], { input: "" })).code).toBe(2);
    expect((await cli.chalk(["secret", "set", name, value])).code).toBe(2);
    expect((await cli.chalk(["secret", "rm", name])).stdout).toBe(`${name}\n`);
    const gone = await cli.chalk(["secret", "rm", name]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("[not_found]");
  });
});

describe("chalk cp", () => {
  test("copies a directory and a file into a container and back, with progress, byte for byte", async () => {
    const name = uniqueName("cp");
    expect((await cli.chalk(["run", TEST_IMAGE, "--name", name, "--detach"])).code).toBe(0);
    const src = join(cli.dir, "cp-src");
    await mkdir(join(src, "deep", "er"), { recursive: true });
    const big = randomBytes(3 * 1024 * 1024 + 1);
    await writeFile(join(src, "big.bin"), big);
    await writeFile(join(src, "deep", "er", "x.sh"), "#!/bin/sh\necho x\n", { mode: 0o755 });

    const up = await cli.chalk(["cp", src, `${name}:/tmp/`]);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).toMatch(/^copied .*cp-src to .*:\/tmp\/cp-src \(/m);
    const check = await cli.chalk([
      "exec",
      name,
      "--",
      "sh",
      "-c",
      "wc -c < /tmp/cp-src/big.bin; /tmp/cp-src/deep/er/x.sh",
    ]);
    expect(check.stdout).toBe(`${big.byteLength}\nx\n`);
    const file = await cli.chalk(["cp", join(src, "big.bin"), `${name}:/tmp/renamed.bin`]);
    expect(file.code, file.stderr).toBe(0);

    const back = join(cli.dir, "cp-back");
    await mkdir(back);
    const down = await cli.chalk(["cp", `${name}:/tmp/cp-src`, back]);
    expect(down.code, down.stderr).toBe(0);
    expect(await readFile(join(back, "cp-src", "big.bin"))).toEqual(big);
    expect((await stat(join(back, "cp-src", "deep", "er", "x.sh"))).mode & 0o111).not.toBe(0);
    const fileBack = await cli.chalk(["cp", `${name}:/tmp/renamed.bin`, join(back, "f.bin")]);
    expect(fileBack.code).toBe(0);
    expect(await readFile(join(back, "f.bin"))).toEqual(big);

    const exists = await cli.chalk(["cp", `${name}:/tmp/cp-src`, back]);
    expect(exists.code).toBe(1);
    expect(oneErrorLine(exists.stderr, "already_exists")).toBe(true);
    const missing = await cli.chalk(["cp", `${name}:/tmp/none`, back]);
    expect(missing.code).toBe(1);
    expect((await cli.chalk(["cp", src, join(cli.dir, "other")])).code).toBe(2);
    expect((await cli.chalk(["cp", src, `${name}:relative`])).code).toBe(2);
    expect((await readdir(back)).sort()).toEqual(["cp-src", "f.bin"]);
    // The remote side fails while chalk is still writing (a file it cannot write): the progress line,
    // then one error line, exit 1, never a crash with a stack trace.
    const unwritable = await cli.chalk(["cp", join(src, "big.bin"), `${name}:/proc/sys/kernel/hostname`]);
    expect(unwritable.code).toBe(1);
    expect(unwritable.stderr).not.toMatch(/^\s+at |Node\.js v/m);
    expect(unwritable.stderr.trimEnd().split("\n").at(-1)).toMatch(
      /^chalk: \[failed_precondition\] cp: writing /,
    );
  });

  test("an archive from a hostile container cannot write outside the destination", async () => {
    const name = uniqueName("evil");
    expect((await cli.chalk(["run", TEST_IMAGE, "--name", name, "--detach"])).code).toBe(0);
    const outside = join(cli.dir, "outside");
    await mkdir(outside);
    // A tar that climbs out with "..", an absolute path, and a symlink it then writes through.
    const crafted = join(cli.dir, "crafted.tar");
    execFileSync("python3", [
      "-c",
      `
import io, sys, tarfile
out, outside = sys.argv[1], sys.argv[2]
with tarfile.open(out, "w") as t:
    def add(name, data=b"pwned\\n", kind=tarfile.REGTYPE, link=""):
        i = tarfile.TarInfo(name); i.type = kind; i.linkname = link; i.size = len(data) if kind == tarfile.REGTYPE else 0
        t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    add("./ok.txt", b"fine\\n")
    add("../escape-dotdot.txt")
    add(outside + "/escape-absolute.txt")
    add("./link", kind=tarfile.SYMTYPE, link=outside)
    add("./link/escape-symlink.txt")
`,
      crafted,
      outside,
    ]);
    expect((await cli.chalk(["cp", crafted, `${name}:/crafted.tar`])).code).toBe(0);
    // The container's "tar" serves the crafted archive instead of packing the directory.
    const fake = await cli.chalk([
      "exec",
      name,
      "--",
      "sh",
      "-c",
      "mkdir -p /srv/dir && printf '#!/bin/sh\\ncat /crafted.tar\\n' > /usr/local/bin/tar && chmod +x /usr/local/bin/tar",
    ]);
    expect(fake.code, fake.stderr).toBe(0);
    const dest = join(cli.dir, "dest");
    await mkdir(dest);
    const r = await cli.chalk(["cp", `${name}:/srv/dir`, dest]);
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split("\n").at(-1)).toMatch(
      /^chalk: \[failed_precondition\] cp: refused the archive/,
    );
    expect(await readdir(outside)).toEqual([]);
    await expect(stat(join(cli.dir, "escape-dotdot.txt"))).rejects.toThrow();
    // Nothing half-made is left: no destination, no temporary directory.
    expect(await readdir(dest)).toEqual([]);
  });
});
