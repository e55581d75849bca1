import { existsSync, renameSync, writeFileSync } from "node:fs";
import { lstat, readFile, rm, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { notFound } from "@chalk/core";
import { removeDisk } from "@chalk/disk";
import type { ProcessExit } from "../types.js";
import { INIT_PATH } from "./bundle.js";
import { oomKills, removeCgroups } from "./cgroups.js";
import { type SandboxNetwork, teardownNetwork } from "./network.js";
import { unmountOverlay } from "./overlay.js";
import { type RunscContext, runsc } from "./runsc.js";
import { checkRunsc } from "./runsc-binary.js";
import { waitStatusFromExitCode, waitStatusFromLog } from "./wait-status.js";

/** @internal What the runtime records about a sandbox, in `<stateDir>/sandboxes/<id>/meta.json`. */
export interface SandboxMeta {
  id: string;
  createdAt: string;
  labels: Record<string, string>;
  network: RunscContext["network"];
  net: SandboxNetwork | undefined;
  /** The writable layer (overlayfs upper dir): in the state dir, or the caller's `writableLayerDir`. */
  upper: string;
  work: string;
  /** The overlayfs mount: the sandbox's root filesystem. */
  merged: string;
  ownsUpper: boolean;
  /**
   * The file system of the writable layer when the sandbox has a disk limit: a sparse image in the
   * sandbox's state, loop-mounted; `upper` and `work` are on it.
   */
  disk?: { image: string; mountPoint: string } | undefined;
  /** Where the sandbox's own mounts (volumes, resolv.conf, the init) are, inside it. */
  mountTargets?: string[];
  workdir: string;
  resources: { cpu: string | undefined; memory: string | undefined; pids: number; disk?: string | undefined };
}

const ID_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

/**
 * Removes from a caller's writable layer what runsc made there for mounts under `/dev`: it creates
 * each mount point in the root filesystem (so the reaping init's `/dev/init`, an empty file, and
 * `/dev` copied up), although the sandbox sees `/dev` as a memory file system of its own and can
 * write nothing there. Left in place, the trace would become part of an image builder's layer.
 */
async function removeMountPointTraces(upper: string): Promise<void> {
  const init = join(upper, INIT_PATH);
  const st = await lstat(init).catch(() => undefined);
  if (st?.isFile() && st.size === 0) await rm(init, { force: true });
  await rmdir(join(upper, "dev")).catch(() => undefined); // only when empty
}

/** @internal Whether `id` is a sandbox id this runtime accepts. */
export function validSandboxId(id: unknown): id is string {
  return typeof id === "string" && ID_PATTERN.test(id);
}

/** @internal The accepted sandbox id pattern, for error messages. */
export const SANDBOX_ID_PATTERN = ID_PATTERN;

/**
 * @internal One state directory: where each sandbox's metadata, bundle, runsc state and init exit
 * live, and how to reach runsc for it. Shared by the runtime and its sandbox handles; any process
 * on the same directory sees the same sandboxes.
 */
export class SandboxStore {
  /** Exit statuses of init processes whose sandboxes this process deleted, for late waiters. */
  readonly #finalExits = new Map<string, ProcessExit>();
  #checked: Promise<void> | undefined;

  constructor(
    readonly stateDir: string,
    readonly runscPath: string,
    readonly ptyRelayPath: string,
  ) {}

  /**
   * The runsc context of a sandbox: the same global flags for every call. The first call checks
   * that runsc is the pinned version (once per store), so a missing or foreign runsc fails with
   * the setup command before any work.
   */
  async runscContext(network: RunscContext["network"]): Promise<RunscContext> {
    this.#checked ??= checkRunsc(this.runscPath).catch((err: unknown) => {
      this.#checked = undefined;
      throw err;
    });
    await this.#checked;
    return { binary: this.runscPath, root: join(this.stateDir, "runsc"), network };
  }

  /** The state directory of one sandbox. */
  sandboxDir(id: string): string {
    return join(this.stateDir, "sandboxes", id);
  }

  async readMeta(id: string): Promise<SandboxMeta> {
    if (!validSandboxId(id)) throw notFound("sandbox", String(id));
    try {
      return JSON.parse(await readFile(join(this.sandboxDir(id), "meta.json"), "utf8")) as SandboxMeta;
    } catch {
      throw notFound("sandbox", id);
    }
  }

  /**
   * Records a sandbox's metadata (atomically: a temporary file renamed over). Synchronous: a few
   * hundred bytes in the local state directory, on create's critical path.
   */
  writeMeta(meta: SandboxMeta): void {
    const file = join(this.sandboxDir(meta.id), "meta.json");
    writeFileSync(`${file}.tmp`, JSON.stringify(meta), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }

  /** Whether the init process has ended (the detached wrapper wrote its status). */
  initEnded(id: string): boolean {
    return existsSync(join(this.sandboxDir(id), "exit.code"));
  }

  /**
   * How the init process ended, once it has: the exact wait status from `runsc run`'s log, and
   * whether the kernel's OOM killer struck the sandbox. Undefined while it runs.
   */
  async initExit(id: string): Promise<ProcessExit | undefined> {
    const dir = this.sandboxDir(id);
    const code = await readFile(join(dir, "exit.code"), "utf8").catch(() => undefined);
    if (code === undefined) return undefined;
    const log = await readFile(join(dir, "init.log"), "utf8").catch(() => "");
    const status = waitStatusFromLog(log) ?? waitStatusFromExitCode(Number.parseInt(code, 10), new Set());
    const oomKilled = status.signal === "SIGKILL" && oomKills(id) > 0;
    return { ...status, timedOut: false, oomKilled };
  }

  /** The init exit of a sandbox this process deleted. */
  finalExit(id: string): ProcessExit | undefined {
    return this.#finalExits.get(id);
  }

  /**
   * Deletes the sandbox and everything made for it: runsc's sandbox, the root filesystem mount,
   * the writable layer (unless the caller owns it), network, cgroups, state. Safe after a partial
   * create and when the sandbox already died.
   */
  async destroy(meta: SandboxMeta): Promise<void> {
    const dir = this.sandboxDir(meta.id);
    const ctx = await this.runscContext(meta.network);
    await runsc(ctx, ["delete", "--force", meta.id]).catch(() => undefined);
    // The shell that ran `runsc run` writes the init's status when runsc returns: wait for it, so
    // that nothing writes into the directory while it goes, and keep the status for late waiters.
    if (existsSync(join(dir, "runsc.log"))) {
      for (let i = 0; i < 250 && !this.initEnded(meta.id); i++) await sleep(20);
      const exit = await this.initExit(meta.id);
      if (exit) this.#finalExits.set(meta.id, exit);
    }
    if (existsSync(meta.merged)) await unmountOverlay(meta.merged);
    if (meta.net) await teardownNetwork(meta.net, meta.id);
    await removeCgroups(meta.id);
    // A disk goes whole, with the layer on it (its loop device clears itself at the unmount).
    if (meta.disk) await removeDisk(meta.disk.image, meta.disk.mountPoint);
    await rm(meta.work, { recursive: true, force: true });
    if (meta.ownsUpper) await rm(meta.upper, { recursive: true, force: true });
    else await removeMountPointTraces(meta.upper);
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}
