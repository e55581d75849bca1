import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { VolumeService } from "@chalk/proto/volume/v1";
import { addService, createTransport, listen, type Transport } from "@chalk/rpc";
import { test as base } from "vitest";
import { VolumeStore, volumeServiceImpl } from "../src/host/index.js";

/** A temporary directory tree, removed after the test. */
export async function tempRoot(prefix = "chalk-volume-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/**
 * Every entry below `root` with its type and, for files, its content (for symlinks, the target):
 * comparing two snapshots shows whether anything changed anywhere in the tree.
 */
export async function snapshotTree(
  root: string,
  skip: (rel: string) => boolean = () => false,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string, rel: string) => {
    for (const name of (await readdir(dir)).sort()) {
      const r = rel === "" ? name : `${rel}/${name}`;
      if (skip(r)) continue;
      const full = join(dir, name);
      const st = await lstat(full);
      if (st.isSymbolicLink()) out.set(r, `link:${await readlink(full)}`);
      else if (st.isDirectory()) {
        out.set(r, "dir");
        await walk(full, r);
      } else if (st.isFile()) out.set(r, `file:${(await readFile(full)).toString("base64")}`);
      else out.set(r, "special");
    }
  };
  await walk(root, "");
  return out;
}

/** A volume store in a fresh data directory, served over gRPC on 127.0.0.1:0. */
export interface VolumeServerFixture {
  /** Temporary root; the data directory is `<root>/data`, other paths in it are "outside". */
  root: string;
  dataDir: string;
  store: VolumeStore;
  address: string;
  /** A transport in environment "default"; more with {@link VolumeServerFixture.transport}. */
  defaultTransport: Transport;
  transport(environment: string): Transport;
}

export const test = base.extend<{ server: VolumeServerFixture }>({
  // biome-ignore lint/correctness/noEmptyPattern: vitest fixtures take their dependencies by destructuring.
  server: async ({}, use) => {
    const root = await tempRoot();
    const dataDir = join(root, "data");
    const store = await VolumeStore.open({ dataDir });
    const server = await listen({
      address: "127.0.0.1:0",
      register: (s) => addService(s, VolumeService, volumeServiceImpl(store)),
    });
    const { address } = server;
    const transports: Transport[] = [];
    const transport = (environment: string) => {
      const t = createTransport({ address, environment });
      transports.push(t);
      return t;
    };
    try {
      await use({ root, dataDir, store, address, defaultTransport: transport("default"), transport });
    } finally {
      for (const t of transports) t.close();
      server.close();
      await store.close();
      await rm(root, { recursive: true, force: true });
    }
  },
});

/**
 * Starts a TypeScript file in a new Node process (tsx's loader imported directly, so the returned
 * pid is the process that runs the script, not a wrapper), resolving workspace packages to sources.
 */
export function spawnTs(script: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const loader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  return spawn(
    process.execPath,
    ["--import", loader, "--conditions=@chalk/source", script, ...args],
    options,
  );
}
