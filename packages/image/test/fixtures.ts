/**
 * Fixtures for the integration tests: a builder on a temporary store (bases come from the machine's
 * cache in /var/cache/chalk/image-bases, bootstrapped once), sandboxes made from built images, and
 * cleanup of everything a test made, also when it fails.
 */
import { lstat, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Sandbox } from "@chalk/sandbox";
import { LocalRuntime } from "@chalk/sandbox/local";
import { afterAll, beforeAll } from "vitest";
import type { ImageBuildEvent } from "../src/build-events.js";
import { ImageBuilder, type ImageBuilderOpenOptions, type ResolvedImage } from "../src/builder/index.js";
import { sha256Digest } from "../src/builder/oci-store.js";
import { startRegistry, type TestRegistry } from "./registry-fixture.js";

/** A builder on a temporary store with its own sandbox state. */
export interface BuilderHandle {
  dir: string;
  storeDir: string;
  runtime: LocalRuntime;
  builder: ImageBuilder;
}

/** Opens a builder on a fresh temporary store. */
export async function openBuilder(
  options: Omit<ImageBuilderOpenOptions, "storeDir" | "runtime"> = {},
  dir?: string,
): Promise<BuilderHandle> {
  const root = dir ?? (await mkdtemp(join(tmpdir(), "chalk-image-")));
  const runtime = new LocalRuntime({ stateDir: join(root, "sandboxes") });
  const storeDir = join(root, "store");
  const builder = await ImageBuilder.open({ ...options, storeDir, runtime });
  return { dir: root, storeDir, runtime, builder };
}

/** Closes a builder, stops any sandbox left in its runtime and removes its directory. */
export async function closeBuilder(h: BuilderHandle): Promise<void> {
  await h.builder.close().catch(() => undefined);
  for (const info of await h.runtime.list().catch(() => [])) {
    console.error(`stopping leftover sandbox ${info.id}`);
    await (await h.runtime.get(info.id)).stop().catch(() => undefined);
  }
  await rm(h.dir, { recursive: true, force: true });
}

/** One builder (and optionally one registry) for a whole test file. */
export function useBuilder(
  options: {
    registry?: boolean;
    open?: Omit<ImageBuilderOpenOptions, "storeDir" | "runtime" | "registry">;
  } = {},
): {
  readonly h: BuilderHandle;
  readonly registry: TestRegistry;
} {
  const state: { h?: BuilderHandle; registry?: TestRegistry } = {};
  beforeAll(async () => {
    if (options.registry) state.registry = await startRegistry();
    state.h = await openBuilder({
      ...options.open,
      ...(state.registry ? { registry: { address: state.registry.address } } : {}),
    });
  });
  afterAll(async () => {
    if (state.h) await closeBuilder(state.h);
    if (state.registry) await state.registry.stop();
  });
  return {
    get h() {
      if (!state.h) throw new Error("builder not open");
      return state.h;
    },
    get registry() {
      if (!state.registry) throw new Error("no registry");
      return state.registry;
    },
  };
}

/** Runs `fn` with a sandbox of the image, stopped afterwards. */
export async function withSandbox<T>(
  runtime: LocalRuntime,
  image: ResolvedImage,
  fn: (s: Sandbox) => Promise<T>,
): Promise<T> {
  const sandbox = await runtime.create({
    rootfs: image.rootfs,
    env: image.env,
    ...(image.workdir ? { workdir: image.workdir } : {}),
  });
  try {
    return await fn(sandbox);
  } finally {
    await sandbox.stop();
  }
}

/** Collects a build's events; `logText` is all its output. */
export function recorder(): {
  events: ImageBuildEvent[];
  onEvent: (e: ImageBuildEvent) => void;
  logText: () => string;
} {
  const events: ImageBuildEvent[] = [];
  return {
    events,
    onEvent: (e) => events.push(e),
    logText: () => events.map((e) => (e.type === "log" ? e.text : "")).join(""),
  };
}

/**
 * Checks the store's consistency: every manifest in index.json and every blob it references exist
 * and hash to their names; no temporary file is left. Returns the manifests' digests.
 */
export async function checkStore(storeDir: string): Promise<string[]> {
  const index = JSON.parse(await readFile(join(storeDir, "index.json"), "utf8")) as {
    manifests: { digest: string }[];
  };
  const verify = async (digest: string) => {
    const bytes = await readFile(join(storeDir, "blobs", "sha256", digest.slice(7)));
    if (sha256Digest(bytes) !== digest) throw new Error(`blob ${digest} is corrupt`);
    return bytes;
  };
  for (const m of index.manifests) {
    const manifest = JSON.parse((await verify(m.digest)).toString()) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
    await verify(manifest.config.digest);
    for (const l of manifest.layers) await verify(l.digest);
  }
  const leftovers = await readdir(join(storeDir, "chalk", "tmp"));
  if (leftovers.length > 0) throw new Error(`temporary files left: ${leftovers.join(", ")}`);
  return index.manifests.map((m) => m.digest);
}

/** Whether a path exists (without following a final symlink). */
export async function exists(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => undefined)) !== undefined;
}
