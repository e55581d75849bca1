import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import type { Sandbox } from "../src/index.js";
import { LocalRuntime, type LocalSandboxCreateOptions } from "../src/local/index.js";
import { testRootfs } from "./behaviour.js";

/** An in-process runtime on a temporary state directory, for one test file. */
export interface LocalRuntimeFixture {
  /** The state directory (made before the first test). */
  readonly stateDir: string;
  readonly runtime: LocalRuntime;
  /** The cached test root filesystem. */
  readonly rootfs: string;
  /** Creates a sandbox on the test rootfs (unless `rootfs` is given), stopped after the file. */
  create(options?: Partial<LocalSandboxCreateOptions>): Promise<Sandbox>;
}

/**
 * Registers `beforeAll`/`afterAll` hooks that make a runtime on a fresh state directory, and stop
 * every sandbox made through `create` and remove the directory after the file, also when a test
 * failed.
 */
export function useLocalRuntime(prefix: string): LocalRuntimeFixture {
  const rootfs = testRootfs();
  const made: Sandbox[] = [];
  let stateDir = "";
  let runtime: LocalRuntime | undefined;
  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), prefix));
    runtime = new LocalRuntime({ stateDir });
  });
  afterAll(async () => {
    for (const s of made) await s.stop().catch(() => undefined);
    await rm(stateDir, { recursive: true, force: true });
  });
  return {
    get stateDir() {
      return stateDir;
    },
    get runtime() {
      if (!runtime) throw new Error("the runtime is made in beforeAll");
      return runtime;
    },
    rootfs,
    async create(options = {}) {
      const s = await (runtime as LocalRuntime).create({ rootfs, ...options });
      made.push(s);
      return s;
    },
  };
}
