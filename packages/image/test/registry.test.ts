import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ChalkError, Code } from "@chalk/core";
import { describe, expect, test } from "vitest";
import { sha256Digest } from "../src/builder/oci-store.js";
import { Image } from "../src/index.js";
import { closeBuilder, exists, openBuilder, recorder, useBuilder, withSandbox } from "./fixtures.js";

const run = promisify(execFile);
const ctx = useBuilder({ registry: true });

/** A spec whose layer deletes and replaces base files: whiteouts must survive push, pull and unpack. */
const PUSHED = Image.debianSlim("3.11").runCommands(
  "rm /etc/debian_version && rm -rf /usr/share/doc && mkdir /usr/share/doc && echo pushed > /usr/share/doc/x",
);

describe("with a registry on loopback", () => {
  test("a built image is pushed, and its URI names the registry and the manifest digest", async () => {
    const log = recorder();
    const built = await ctx.h.builder.getOrBuild(PUSHED, { onEvent: log.onEvent });
    // The registry has no python:3.11-slim yet, so the base is bootstrapped locally.
    expect(log.logText()).toContain(
      `${ctx.registry.address}/python:3.11-slim not found; bootstrapping Debian bookworm`,
    );
    expect(built.imageUri).toBe(`${ctx.registry.address}/chalk/images@${built.manifestDigest}`);
    // skopeo (a test-only tool) reads back what was pushed: same manifest bytes, same layers.
    const { stdout: raw } = await run("skopeo", [
      "inspect",
      "--tls-verify=false",
      "--raw",
      `docker://${built.imageUri}`,
    ]);
    expect(sha256Digest(raw)).toBe(built.manifestDigest);
    expect((JSON.parse(raw) as { layers: unknown[] }).layers).toHaveLength(built.layerCount);
    const { stdout: byTag } = await run("skopeo", [
      "inspect",
      "--tls-verify=false",
      "--raw",
      `docker://${ctx.registry.address}/chalk/images:spec-${built.specDigest.slice(7)}`,
    ]);
    expect(sha256Digest(byTag)).toBe(built.manifestDigest);
  });

  test("a builder with an empty store pulls the pushed image instead of building, and it runs", async () => {
    const other = await openBuilder({ registry: { address: ctx.registry.address } });
    try {
      const log = recorder();
      const got = await other.builder.resolve(PUSHED, { onEvent: log.onEvent });
      expect(got.cached).toBe(true);
      expect(log.events).toEqual([]);
      expect(got.imageUri).toBe((await ctx.h.builder.getOrBuild(PUSHED)).imageUri);
      // Layers were unpacked from the pulled blobs: .wh. files became overlay whiteouts.
      await withSandbox(other.runtime, got, async (s) => {
        const r = await s.exec(
          "sh",
          "-c",
          "test -e /etc/debian_version; echo $?; echo /usr/share/doc/*; cat /usr/share/doc/x",
        );
        expect(r.stdoutText).toBe("1\n/usr/share/doc/x\npushed\n");
      });
    } finally {
      await closeBuilder(other);
    }
  });

  test("the store is an OCI image layout that skopeo and umoci read, whiteouts applied", async () => {
    const built = await ctx.h.builder.getOrBuild(PUSHED);
    const ref = `spec-${built.specDigest.slice(7)}`;
    const { stdout } = await run("skopeo", ["inspect", "--raw", `oci:${ctx.h.storeDir}:${ref}`]);
    expect(sha256Digest(stdout)).toBe(built.manifestDigest);
    const bundle = await mkdtemp(join(tmpdir(), "chalk-umoci-"));
    try {
      await run("umoci", ["unpack", "--image", `${ctx.h.storeDir}:${ref}`, join(bundle, "b")], {
        maxBuffer: 1 << 24,
      });
      const rootfs = join(bundle, "b", "rootfs");
      expect(await exists(join(rootfs, "etc", "debian_version"))).toBe(false);
      expect(await exists(join(rootfs, "etc", "passwd"))).toBe(true);
      expect(await readdir(join(rootfs, "usr", "share", "doc"))).toEqual(["x"]);
      expect(await readFile(join(rootfs, "usr", "share", "doc", "x"), "utf8")).toBe("pushed\n");
    } finally {
      await rm(bundle, { recursive: true, force: true });
    }
  });

  test("debianSlim pulls python:<version>-slim from the registry when it is there", async () => {
    const base = await ctx.h.builder.getOrBuild(PUSHED);
    // Publish the image built above as the registry's python:3.11-slim.
    await run("skopeo", [
      "copy",
      "--dest-tls-verify=false",
      `oci:${ctx.h.storeDir}:spec-${base.specDigest.slice(7)}`,
      `docker://${ctx.registry.address}/python:3.11-slim`,
    ]);
    const other = await openBuilder({ registry: { address: ctx.registry.address } });
    try {
      const log = recorder();
      const image = await other.builder.resolve(
        Image.debianSlim("3.11").runCommands("cat /usr/share/doc/x"),
        {
          onEvent: log.onEvent,
        },
      );
      expect(log.logText()).toContain(`pulling ${ctx.registry.address}/python:3.11-slim`);
      expect(log.logText()).toContain("pushed\n");
      expect(log.logText()).not.toContain("bootstrapping");
      expect(image.imageUri.startsWith(`${ctx.registry.address}/chalk/images@sha256:`)).toBe(true);
    } finally {
      await closeBuilder(other);
    }
  });

  test("fromRegistry builds on an image from the registry, named with or without the host", async () => {
    for (const ref of [`${ctx.registry.address}/python:3.11-slim`, "python:3.11-slim"]) {
      const image = await ctx.h.builder.resolve(Image.fromRegistry(ref).runCommands("echo on top > /top"));
      await withSandbox(ctx.h.runtime, image, async (s) => {
        expect((await s.exec("cat", "/usr/share/doc/x", "/top")).stdoutText).toBe("pushed\non top\n");
      });
    }
  });

  test("an image missing from the registry fails the build with not found, naming it", async () => {
    const err = await ctx.h.builder
      .getOrBuild(Image.fromRegistry("nothing/here:v1"))
      .catch((e: unknown) => e as ChalkError);
    expect(err).toBeInstanceOf(ChalkError);
    expect((err as ChalkError).message).toContain(`${ctx.registry.address}/nothing/here:v1`);
    expect((err as ChalkError).message).toContain("404");
  });

  test("a Python version neither the registry nor Debian has fails naming what exists", async () => {
    const err = await ctx.h.builder
      .getOrBuild(Image.debianSlim("3.12"))
      .catch((e: unknown) => e as ChalkError);
    expect((err as ChalkError).code).toBe(Code.FailedPrecondition);
    expect((err as ChalkError).message).toContain(
      `the registry at ${ctx.registry.address} has no python:3.12-slim`,
    );
    expect((err as ChalkError).message).toContain("3.11 (Debian bookworm), 3.13 (Debian trixie)");
  });
});

describe("without a registry", () => {
  test("a Python version Debian does not ship fails with the available versions and how to add a registry", async () => {
    const local = await openBuilder();
    try {
      const err = await local.builder
        .getOrBuild(Image.debianSlim("3.12"))
        .catch((e: unknown) => e as ChalkError);
      expect((err as ChalkError).code).toBe(Code.FailedPrecondition);
      const m = (err as ChalkError).message;
      expect(m).toContain("Python 3.12 is not available here");
      expect(m).toContain("3.11 (Debian bookworm), 3.13 (Debian trixie)");
      expect(m).toContain("configure a registry");
      expect(m).toContain("python:3.12-slim");
      expect((await local.builder.status(await Image.debianSlim("3.12").digest())).status).toBe("failed");
    } finally {
      await closeBuilder(local);
    }
  });

  test("debianSlim('3.13') bootstraps Debian trixie and runs Python 3.13", async () => {
    const local = await openBuilder();
    try {
      const image = await local.builder.resolve(Image.debianSlim("3.13").pipInstall(["six"]));
      await withSandbox(local.runtime, image, async (s) => {
        const r = await s.exec("python", "-c", "import sys, six; print(sys.version_info[:2])");
        expect(r.stdoutText).toBe("(3, 13)\n");
      });
    } finally {
      await closeBuilder(local);
    }
  });
});
