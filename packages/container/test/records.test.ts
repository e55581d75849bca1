/**
 * The SDK additions the CLI stands on, against a real server: `listContainers` and
 * `describeContainer` (what `chalk ps` and `chalk inspect` show), `logs({ tailLines })`, and
 * `run({ onUploadProgress })`.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect } from "vitest";
import {
  ChalkError,
  Code,
  Container,
  describeContainer,
  Image,
  listContainers,
  Volume,
  type VolumeUploadProgress,
} from "../src/index.js";
import { containerTest, TEST_IMAGE, useServer } from "./fixtures.js";

const ctx = useServer();
const test = containerTest(() => ctx.server);
const unique = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("container records", () => {
  test("listContainers lists every status newest first; describeContainer finds one by name or id", async ({
    run,
  }) => {
    const vol = unique("rec");
    await new Volume(vol, { transport: ctx.server.transport() }).create();
    const first = await run({
      image: TEST_IMAGE,
      name: unique("first"),
      env: { A: "1" },
      volumes: [[vol, "/data"]],
    });
    const second = await run({
      image: TEST_IMAGE,
      name: unique("second"),
      entrypoint: ["sh", "-c", "exit 0"],
    });
    await first.stop();
    const options = { transport: ctx.server.transport() };
    const all = await listContainers(options);
    const names = all.map((c) => c.name);
    expect(names.indexOf(second.name)).toBeLessThan(names.indexOf(first.name));
    const rec = all.find((c) => c.name === first.name)!;
    expect(rec).toMatchObject({
      id: first.id,
      status: "Stopped",
      env: { A: "1" },
      volumes: [{ name: vol, mountPath: "/data", readOnly: false }],
      secrets: [],
      port: undefined,
      entrypoint: [],
    });
    expect(rec.imageUri).not.toBe("");
    expect(await describeContainer(first.name, options)).toEqual(rec);
    expect(await describeContainer(first.id, options)).toEqual(rec);
    expect((await listContainers({ ...options, limit: 1 })).length).toBe(1);

    for (const bad of [
      () => listContainers({ ...options, limit: 0 }),
      () => describeContainer("Bad_Name", options),
    ]) {
      const err = await bad().catch((e: unknown) => ChalkError.from(e));
      expect((err as ChalkError).code).toBe(Code.InvalidArgument);
    }
    const missing = await describeContainer(unique("ghost"), options).catch((e: unknown) =>
      ChalkError.from(e),
    );
    expect((missing as ChalkError).code).toBe(Code.NotFound);
  });

  test("logs({ tailLines }) starts with the last lines, also when following", async ({ run }) => {
    const c = await run({
      image: TEST_IMAGE,
      name: unique("tail"),
      entrypoint: ["sh", "-c", "for i in $(seq 1 50); do echo line-$i; done; printf partial"],
    });
    while (c.info.status === "Running") {
      await sleep(100);
      await c.refresh();
    }
    expect(await c.logs({ tailLines: 3 })).toBe("line-49\nline-50\npartial");
    expect(await c.logs({ tailLines: 1000 })).toBe(await c.logs());
    let followed = "";
    for await (const text of c.logs({ follow: true, tailLines: 2 })) followed += text;
    expect(followed).toBe("line-50\npartial");
    const err = await c.logs({ tailLines: -1 }).catch((e: unknown) => ChalkError.from(e));
    expect((err as ChalkError).field).toBe("tailLines");
  });

  test("run({ onUploadProgress }) follows the upload of local files to the end", async () => {
    const dir = await mkdtemp(join(tmpdir(), "chalk-upload-progress-"));
    dirs.push(dir);
    await writeFile(join(dir, "a.bin"), new Uint8Array(700 * 1024).fill(7));
    await writeFile(join(dir, "b.txt"), "b\n");
    const seen: VolumeUploadProgress[] = [];
    const c = new Container({
      image: Image.debianSlim("3.11").addLocalDir(dir, "/srv"),
      name: unique("upload"),
      transport: ctx.server.transport(),
    });
    try {
      await c.run({ onUploadProgress: (p) => seen.push({ ...p }) });
      expect(seen.at(-1)).toMatchObject({
        bytesSent: 700 * 1024 + 2,
        bytesTotal: 700 * 1024 + 2,
        filesSent: 2,
        filesTotal: 2,
      });
      expect((await c.exec("wc", "-c", "/srv/a.bin")).stdoutText).toBe(`${700 * 1024} /srv/a.bin\n`);
    } finally {
      await c.stop().catch(() => undefined);
    }
  });
});
