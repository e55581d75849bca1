/**
 * Containers from `Image` specs through the image builder: the seed's quick start, a cached second
 * run, and local files that travel in a temporary volume.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VolumeStore } from "@chalk/volume/host";
import { afterAll, describe, expect } from "vitest";
import { Container, Image } from "../src/index.js";
import { containerTest, useServer } from "./fixtures.js";

const ctx = useServer();
const test = containerTest(() => ctx.server);
const dir = mkdtempSync(join(tmpdir(), "chalk-upload-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("images", () => {
  test("the seed's quick start: build, run, exec python with requests, stop; the second run is cached", async () => {
    const logs: string[] = [];
    const image = Image.debianSlim("3.11").pipInstall(["requests"]);
    const c = await new Container({
      image,
      name: "hello-container",
      cpu: "1",
      memory: "2Gi",
      transport: ctx.server.transport(),
    }).run({ onBuildLog: (l) => logs.push(l.text) });
    try {
      expect(c.info.status).toBe("Running");
      expect(c.imageUri).toMatch(/@sha256:[0-9a-f]{64}$/);
      const result = await c.exec("python", "-c", "import requests; print(requests.__version__)");
      expect(result.exitCode).toBe(0);
      expect(result.stdoutText.trim()).toMatch(/^\d+\.\d+/);
    } finally {
      await c.stop();
    }
    expect(c.info.status).toBe("Stopped");
    // The store may hold the image already (it is shared across runs on this machine).
    if (logs.length > 0) expect(logs.join("")).toContain("pip install requests");
    // The same spec again is cached: no step runs, and the stopped container's name is free again.
    const again: string[] = [];
    const c2 = new Container({ image, name: "hello-container", transport: ctx.server.transport() });
    try {
      await c2.run({ onBuildLog: (l) => again.push(l.text) });
      expect(c2.imageUri).toBe(c.imageUri);
      expect(c2.id).not.toBe(c.id);
      expect(again.filter((t) => !t.includes("(cached)"))).toEqual([]);
    } finally {
      await c2.stop().catch(() => undefined);
    }
  });

  test("local files travel in a temporary volume that stop() removes", async ({ run }) => {
    writeFileSync(join(dir, "main.py"), "print('uploaded')\n");
    const c = await run({
      image: Image.debianSlim("3.11").addLocalFile(join(dir, "main.py"), "/app/main.py"),
      name: "uploader",
    });
    expect((await c.exec("python3", "/app/main.py")).stdoutText).toBe("uploaded\n");
    const volumes = await VolumeStore.open({ dataDir: join(ctx.server.dataDir, "volumes") });
    try {
      const uploads = async () =>
        (await volumes.list("default")).items.filter((v) => v.name.startsWith("chalk-upload-"));
      expect(await uploads()).toHaveLength(1);
      await c.stop();
      expect(await uploads()).toHaveLength(0);
    } finally {
      await volumes.close();
    }
  });

  test("a failed build fails run() with the builder's message and leaves a Failed container", async () => {
    const err = await new Container({
      image: Image.debianSlim("3.11").runCommands("echo building; exit 7"),
      name: "broken-build",
      transport: ctx.server.transport(),
    })
      .run()
      .then(
        () => undefined,
        (e: Error) => e,
      );
    expect(err?.message).toMatch(/failed_precondition.*Failed.*image/s);
    const record = await Container.fromName("broken-build", { transport: ctx.server.transport() });
    expect(record.info.status).toBe("Failed");
  });
});
