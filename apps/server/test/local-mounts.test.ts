/**
 * The local backend's mount sources: one function resolves (volume, subpath) without following
 * symlinks and pins the result, so links planted in a volume (to /etc, to the data dir, in the
 * volume) are refused, and links swapped in while mounts are made never redirect one.
 */
import { readdirSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { VolumeStore } from "@chalk/volume/host";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { LocalMounts } from "../src/local/local-mounts.js";

let base: string;
let store: VolumeStore;
let mounts: LocalMounts;
let n = 0;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), "chalk-mounts-"));
  store = await VolumeStore.open({ dataDir: join(base, "volumes") });
  mounts = new LocalMounts(store, join(base, "mounts"));
});

afterAll(async () => {
  await mounts.recover();
  await store.close();
  await rm(base, { recursive: true, force: true });
});

/** A volume with `real/marker`; returns its host data dir (where a sandbox's writes land). */
async function volume(): Promise<{ name: string; data: string }> {
  const name = `vol-${++n}`;
  await store.create("default", name);
  await store.putFile("default", name, "real/marker", new TextEncoder().encode("volume\n"));
  return { name, data: join(base, "volumes", "volumes", "default", name, "data") };
}

/** Stages one mount and lists what it shows; undefined when it was refused. */
async function staged(
  vol: string,
  subPath: string[],
): Promise<{ entries: string[] } | { refused: ChalkError }> {
  const id = `c-${++n}`;
  try {
    const [m] = await mounts.prepare(id, "default", [{ volume: vol, subPath, target: "/x", readOnly: true }]);
    const entries = readdirSync(m?.source ?? "/nonexistent");
    return { entries };
  } catch (err) {
    return { refused: ChalkError.from(err) };
  } finally {
    await mounts.release(id);
  }
}

describe("mount sources", () => {
  test("a real directory is mounted, and nothing stays mounted or staged after release", async () => {
    const v = await volume();
    expect(await staged(v.name, ["real"])).toEqual({ entries: ["marker"] });
    expect(readdirSync(join(base, "mounts"))).toEqual([]);
  });

  test("links planted to /etc, to the data dir, and inside the volume are refused", async () => {
    const v = await volume();
    await symlink("/etc", join(v.data, "etc"));
    await symlink(base, join(v.data, "datadir"));
    await symlink("/", join(v.data, "root"));
    await symlink("real", join(v.data, "inside"));
    await symlink("../../../..", join(v.data, "up"));
    await mkdir(join(v.data, "real", "deeper"));
    await symlink("/etc", join(v.data, "real", "deeper", "etc"));
    for (const path of [
      ["etc"],
      ["datadir"],
      ["root", "etc"],
      ["inside"],
      ["up"],
      ["real", "deeper", "etc"],
    ]) {
      const r = await staged(v.name, path);
      expect(r, path.join("/")).toMatchObject({ refused: { code: Code.FailedPrecondition } });
      if ("refused" in r) expect(r.refused.message).toMatch(/passes through a symlink/);
    }
    expect(await staged(v.name, ["missing"])).toMatchObject({ refused: { code: Code.NotFound } });
  });

  test("random plants of links and files along random paths never mount anything but the volume's own directory", async () => {
    const kinds = ["dir", "file", "link-etc", "link-datadir", "link-root", "link-up", "link-in"] as const;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...kinds), { minLength: 1, maxLength: 4 }), async (chain) => {
        const v = await volume();
        let dir = v.data;
        const path: string[] = [];
        for (const [i, kind] of chain.entries()) {
          const name = `p${i}`;
          const here = join(dir, name);
          path.push(name);
          if (kind === "dir") await mkdir(here);
          else if (kind === "file") await writeFile(here, "file\n");
          else if (kind === "link-etc") await symlink("/etc", here);
          else if (kind === "link-datadir") await symlink(base, here);
          else if (kind === "link-root") await symlink("/", here);
          else if (kind === "link-up") await symlink("../".repeat(i + 6), here);
          else await symlink("../".repeat(i) || ".", here);
          if (kind !== "dir") break;
          dir = here;
        }
        const r = await staged(v.name, path);
        if (chain.every((k) => k === "dir")) expect(r).toEqual({ entries: [] });
        else expect(r).toHaveProperty("refused");
      }),
      { numRuns: 60 },
    );
  });

  test("a link swapped in while mounts are made never redirects one (raced, 300 mounts)", async () => {
    const v = await volume();
    await mkdir(join(v.data, "spare"));
    await writeFile(join(v.data, "spare", "marker"), "volume\n");
    await symlink("/etc", join(v.data, "link"));
    // The planted side: `swap` is, by turns, a real directory and a symlink to /etc.
    await rename(join(v.data, "spare"), join(v.data, "swap"));
    let racing = true;
    const swapper = (async () => {
      while (racing) {
        await rename(join(v.data, "swap"), join(v.data, "spare"));
        await rename(join(v.data, "link"), join(v.data, "swap"));
        await rename(join(v.data, "swap"), join(v.data, "link"));
        await rename(join(v.data, "spare"), join(v.data, "swap"));
      }
    })();
    const seen = { mounted: 0, refused: 0 };
    try {
      for (let i = 0; i < 300; i++) {
        const r = await staged(v.name, ["swap"]);
        if ("entries" in r) {
          expect(r.entries).toEqual(["marker"]);
          seen.mounted++;
        } else {
          expect([Code.FailedPrecondition, Code.NotFound]).toContain(r.refused.code);
          seen.refused++;
        }
      }
    } finally {
      racing = false;
      await swapper;
    }
    console.log("raced mounts:", JSON.stringify(seen));
    expect(seen.mounted).toBeGreaterThan(0);
  });
});
