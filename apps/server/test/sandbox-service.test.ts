/**
 * The server's sandbox service takes no host path from a client (issue 8, finding 1): sandboxes
 * start from image references resolved in the server's own store, both routes that read the host's
 * files are refused, and sandboxes get the environment's default resources (finding 7).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { Image, ImageClient } from "@chalk/image";
import { SandboxService } from "@chalk/proto/sandbox/v1";
import { createClient } from "@chalk/rpc";
import { connectSandboxes, type Sandbox } from "@chalk/sandbox";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { removeDataDir, type ServerProcess, startServerProcess } from "../src/server-process.js";

const IMAGES_DIR = "/var/cache/chalk/images";
const rootfs = execFileSync("bash", [join(import.meta.dirname, "../../../tooling/scripts/rootfs.sh")], {
  encoding: "utf8",
}).trim();

let server: ServerProcess;
const made: Sandbox[] = [];
const marker = `chalk-test-marker-${process.pid}-${Date.now()}`;
const local = mkdtempSync(join(tmpdir(), "chalk-sbx-service-"));

beforeAll(async () => {
  server = await startServerProcess({
    args: ["--images-dir", IMAGES_DIR, "--rootfs-image", `minbase=${rootfs}`],
  });
  // A file only the host has: a sandbox that shows it has reached the host's /etc.
  writeFileSync(join("/etc", marker), "host\n");
});

afterAll(async () => {
  rmSync(join("/etc", marker), { force: true });
  rmSync(local, { recursive: true, force: true });
  for (const s of made) await s.stop().catch(() => undefined);
  await server?.kill();
  if (server) await removeDataDir(server.dataDir);
});

async function errorOf(p: Promise<unknown>): Promise<ChalkError> {
  try {
    await p;
  } catch (err) {
    return ChalkError.from(err);
  }
  throw new Error("expected an error");
}

describe("sandboxes made through the server", () => {
  test("start from an image reference, as a Container does", async () => {
    const sandboxes = connectSandboxes({ transport: server.transport() });
    const s = await sandboxes.create({ image: "minbase" });
    made.push(s);
    expect((await s.exec("cat", "/etc/debian_version")).stdoutText).toMatch(/^12\./);
  });

  test("route 1: a root filesystem naming host paths (the data dir above the image store) is refused before any work", async () => {
    const raw = createClient(SandboxService, server.transport());
    for (const spec of [
      { rootfs: [join(IMAGES_DIR, "chalk", "layers", "x"), join(IMAGES_DIR, "..")] },
      { image: "minbase", rootfs: [server.dataDir] },
      { image: "minbase", mounts: [{ source: server.dataDir, target: "/data" }] },
      { image: "minbase", logPath: join(server.dataDir, "secrets.db.key") },
    ]) {
      const err = await errorOf(raw.createSandbox({ spec }));
      expect(err.code, JSON.stringify(spec)).toBe(Code.InvalidArgument);
      expect(err.message).toMatch(/takes no host path/);
    }
    expect((await raw.listSandboxes({})).sandboxes.filter((s) => !made.some((m) => m.id === s.id))).toEqual(
      [],
    );
    // The client refuses them too, before sending anything.
    const sandboxes = connectSandboxes({ transport: server.transport() });
    expect((await errorOf(sandboxes.create({ image: "minbase", rootfs: "/" }))).code).toBe(
      Code.InvalidArgument,
    );
  });

  test("route 2: an image whose layer holds a symlink to /etc shows the image's /etc, never the host's", async () => {
    const dir = join(local, "planted");
    execFileSync("mkdir", ["-p", dir]);
    symlinkSync("/etc", join(dir, "hostetc"));
    const image = Image.debianSlim("3.11").addLocalDir(dir, "/planted", { strategy: "copy" });
    const built = await new ImageClient({ transport: server.transport() }).getOrBuild(image);
    const s = await connectSandboxes({ transport: server.transport() }).create({ image: built.imageUri });
    made.push(s);
    expect((await s.exec("readlink", "/planted/hostetc")).stdoutText).toBe("/etc\n");
    const r = await s.exec("sh", "-c", `cat /planted/hostetc/${marker} || echo absent`);
    expect(r.stdoutText).toBe("absent\n");
  });

  test("an image that does not exist is not_found", async () => {
    const err = await errorOf(
      connectSandboxes({ transport: server.transport() }).create({ image: "no-such-image" }),
    );
    expect([Code.NotFound, Code.InvalidArgument]).toContain(err.code);
  });

  test("get the environment's default resources: a 1.5 GiB allocation fails in a default (1 GiB) sandbox", async () => {
    const s = await connectSandboxes({ transport: server.transport() }).create({ image: "minbase" });
    made.push(s);
    expect((await s.info()).resources.memory).toBe("1Gi");
    const r = await s
      .exec("perl", "-e", '$x = "a" x (1536 * 1024 * 1024); print "allocated\\n"')
      .catch((e: unknown) => ChalkError.from(e));
    expect("stdoutText" in r ? r.stdoutText : "").not.toBe("allocated\n");
    const explicit = await connectSandboxes({ transport: server.transport() }).create({
      image: "minbase",
      memory: "300Mi",
    });
    made.push(explicit);
    expect((await explicit.info()).resources.memory).toBe("300Mi");
  });
});
