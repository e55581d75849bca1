import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ChalkError, Code, notFound, parseCpu, parseMemory } from "@chalk/core";
import type { ProcessExit, Sandbox, SandboxCreateOptions, SandboxInfo, SandboxRuntime } from "../types.js";
import { writeBundle } from "./bundle.js";
import { oomKills, prepareMemoryCgroup, removeCgroups, sandboxCgroupPath } from "./cgroups.js";
import { childEnv } from "./child-env.js";
import { LocalSandbox } from "./local-sandbox.js";
import {
  reserveNetwork,
  type SandboxNetwork,
  sandboxResolvConf,
  setupNetwork,
  teardownNetwork,
} from "./network.js";
import { mountOverlay, unmountOverlay } from "./overlay.js";
import { findRunsc, type RunscContext, runsc, runscArgv, runscError, runscLogErrors } from "./runsc.js";
import { validateCreateOptions } from "./validate.js";
import { waitStatusFromExitCode, waitStatusFromLog } from "./wait-status.js";

/** Options for {@link LocalRuntime}. */
export interface LocalRuntimeOptions {
  /**
   * Where sandboxes' state lives: runsc's state root, bundles, writable layers, metadata.
   * Persistent, so another process on the same directory lists and reattaches to the same
   * sandboxes. Default `/var/lib/chalk/sandbox`.
   */
  stateDir?: string;
  /** Path of the runsc binary. Default: `runsc` on PATH. */
  runscPath?: string;
}

/** Create options that only the in-process runtime understands. */
export interface LocalSandboxCreateOptions extends SandboxCreateOptions {
  /**
   * A directory, owned by the caller, to use as the sandbox's writable overlay layer. It is kept
   * after `stop()` (deletions in it are plain overlayfs whiteouts), so an image builder can turn it
   * into a layer. Default: a layer inside the sandbox's state, deleted with it.
   */
  writableLayerDir?: string;
}

/** @internal What the runtime records about a sandbox, in `<stateDir>/sandboxes/<id>/meta.json`. */
export interface SandboxMeta {
  id: string;
  createdAt: string;
  labels: Record<string, string>;
  network: "none" | "host";
  net: SandboxNetwork | undefined;
  upper: string;
  work: string;
  merged: string;
  ownsUpper: boolean;
  workdir: string;
  resources: { cpu: string | undefined; memory: string | undefined; pids: number };
}

const ID_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

/**
 * Runs gVisor sandboxes on this machine, with no server: each sandbox is a `runsc` instance over an
 * overlayfs of its root filesystem layers, with cgroup limits and, on request, its own network
 * namespace. State is kept on disk, so a new process lists the sandboxes and reattaches with
 * {@link LocalRuntime.get}. Needs root and runsc.
 *
 * @example
 * ```ts
 * import { LocalRuntime } from "@chalk/sandbox/local";
 *
 * const runtime = new LocalRuntime({ stateDir: "/var/lib/chalk/sandbox" });
 * await using sandbox = await runtime.create({ rootfs: "/var/cache/chalk/rootfs-bookworm-minbase", memory: "512Mi" });
 * const { stdoutText } = await sandbox.exec("uname", "-a");
 * ```
 */
export class LocalRuntime implements SandboxRuntime, AsyncDisposable {
  /** The state directory. */
  readonly stateDir: string;
  readonly #runscPath: string | undefined;
  #binary: string | undefined;
  /** Exit statuses of init processes whose sandboxes this process deleted, for late waiters. */
  readonly #finalExits = new Map<string, ProcessExit>();

  constructor(options: LocalRuntimeOptions = {}) {
    this.stateDir = options.stateDir ?? "/var/lib/chalk/sandbox";
    this.#runscPath = options.runscPath;
  }

  /** @internal The runsc context of a sandbox: the same global flags for every call. */
  runscContext(network: "none" | "host", netns?: string): RunscContext {
    this.#binary ??= findRunsc(this.#runscPath);
    const ctx: RunscContext = { binary: this.#binary, root: join(this.stateDir, "runsc"), network };
    if (netns) ctx.netns = netns;
    return ctx;
  }

  /** @internal The state directory of one sandbox. */
  sandboxDir(id: string): string {
    return join(this.stateDir, "sandboxes", id);
  }

  /**
   * Creates and starts a sandbox. Everything is checked first (shapes, resource strings, that
   * each layer exists, that runsc is installed); a failure midway undoes what was made.
   */
  async create(options: LocalSandboxCreateOptions): Promise<Sandbox> {
    const v = await validateCreateOptions(options);
    if (v.id !== undefined && !ID_PATTERN.test(v.id)) {
      throw new ChalkError(
        Code.InvalidArgument,
        `id: ${JSON.stringify(v.id)} is not valid; accepted: ${ID_PATTERN}`,
        {
          field: "id",
        },
      );
    }
    const args = v.command ?? idleCommand(v.rootfs);
    const network = v.network ? "host" : "none";
    this.runscContext(network); // fails with the install hint, before any work, when runsc is missing
    const id = v.id ?? `sb-${randomBytes(6).toString("hex")}`;
    const dir = this.sandboxDir(id);
    // Bundles and runsc's state carry the sandbox's environment, secrets included: root only.
    await mkdir(dirname(dir), { recursive: true, mode: 0o700 });
    await mkdir(join(this.stateDir, "runsc"), { recursive: true, mode: 0o700 });
    try {
      await mkdir(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") {
        throw new ChalkError(Code.AlreadyExists, `sandbox ${JSON.stringify(id)} already exists`);
      }
      throw ChalkError.from(err);
    }

    const upper = options.writableLayerDir ?? join(dir, "upper");
    const meta: SandboxMeta = {
      id,
      createdAt: new Date().toISOString(),
      labels: v.labels,
      network,
      net: undefined,
      upper,
      // overlayfs needs its work dir on the upper dir's filesystem.
      work: options.writableLayerDir
        ? `${options.writableLayerDir.replace(/\/+$/, "")}.work-${id}`
        : join(dir, "work"),
      merged: join(dir, "rootfs"),
      ownsUpper: options.writableLayerDir === undefined,
      workdir: v.workdir,
      resources: { cpu: v.cpu, memory: v.memory, pids: v.pids },
    };
    try {
      // Recorded before anything is made, so that stop() (from any process) finds all of it.
      if (v.network) meta.net = await reserveNetwork(randomBytes(4).toString("hex"), id);
      await this.#writeMeta(meta);
      await Promise.all([
        mkdir(upper, { recursive: true }),
        mkdir(meta.work, { recursive: true }),
        mkdir(meta.merged),
      ]);
      await mountOverlay({ layers: v.rootfs, upper, work: meta.work, merged: meta.merged });
      const mounts = v.mounts.map((m) => ({ ...m }));
      if (meta.net) {
        await setupNetwork(meta.net, id);
        const resolv = join(dir, "resolv.conf");
        await writeFile(resolv, await sandboxResolvConf());
        mounts.push({ source: resolv, target: "/etc/resolv.conf", readOnly: true });
      }
      const memoryBytes = v.memory === undefined ? undefined : parseMemory(v.memory);
      await prepareMemoryCgroup(id, memoryBytes);
      const bundle = join(dir, "bundle");
      await mkdir(bundle);
      await writeBundle(bundle, {
        id,
        rootfs: meta.merged,
        args,
        env: v.env,
        workdir: v.workdir,
        cpuMillis: v.cpu === undefined ? undefined : parseCpu(v.cpu),
        memoryBytes,
        pids: v.pids,
        mounts,
        cgroupsPath: sandboxCgroupPath(id),
      });
      // The init process's stdout and stderr go straight from the sandbox to the log file.
      const log = await open(v.logPath ?? "/dev/null", "a");
      try {
        await startSandbox(this.runscContext(network, meta.net?.netns), id, bundle, dir, log.fd);
      } finally {
        await log.close();
      }
    } catch (err) {
      await this.destroy(meta).catch(() => undefined);
      throw err;
    }
    return new LocalSandbox(this, id);
  }

  /** Reattaches to a sandbox by id (not_found when this state directory has none). */
  async get(id: string): Promise<Sandbox> {
    await this.readMeta(id);
    return new LocalSandbox(this, id);
  }

  /** Lists the sandboxes of this state directory, oldest first, optionally only those with all `labels`. */
  async list(options: { labels?: Record<string, string> } = {}): Promise<SandboxInfo[]> {
    const ids = await readdir(join(this.stateDir, "sandboxes")).catch(() => [] as string[]);
    const infos: SandboxInfo[] = [];
    for (const id of ids) {
      const info = await new LocalSandbox(this, id).info().catch(() => undefined);
      if (!info) continue;
      if (Object.entries(options.labels ?? {}).every(([k, val]) => info.labels[k] === val)) infos.push(info);
    }
    return infos.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  /** Reattaching does not need the runtime open; disposing it leaves every sandbox running. */
  async [Symbol.asyncDispose](): Promise<void> {}

  /** @internal */
  async readMeta(id: string): Promise<SandboxMeta> {
    if (typeof id !== "string" || !ID_PATTERN.test(id)) throw notFound("sandbox", String(id));
    try {
      return JSON.parse(await readFile(join(this.sandboxDir(id), "meta.json"), "utf8")) as SandboxMeta;
    } catch {
      throw notFound("sandbox", id);
    }
  }

  async #writeMeta(meta: SandboxMeta): Promise<void> {
    const file = join(this.sandboxDir(meta.id), "meta.json");
    await writeFile(`${file}.tmp`, JSON.stringify(meta), { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }

  /**
   * @internal How the init process ended, once it has: the exact wait status from `runsc run`'s
   * log, and whether the kernel's OOM killer struck the sandbox. Undefined while it runs.
   */
  async initExit(id: string): Promise<ProcessExit | undefined> {
    const dir = this.sandboxDir(id);
    const code = await readFile(join(dir, "exit.code"), "utf8").catch(() => undefined);
    if (code === undefined) return undefined;
    const log = await readFile(join(dir, "init.log"), "utf8").catch(() => "");
    const status = waitStatusFromLog(log) ?? waitStatusFromExitCode(Number.parseInt(code, 10), new Set());
    const oomKilled = status.signal === "SIGKILL" && (await oomKills(id)) > 0;
    return { ...status, timedOut: false, oomKilled };
  }

  /** @internal The init exit of a sandbox this process deleted. */
  finalExit(id: string): ProcessExit | undefined {
    return this.#finalExits.get(id);
  }

  /**
   * @internal Deletes the sandbox and everything made for it: runsc's sandbox, the root
   * filesystem mount, the writable layer (unless the caller owns it), network, cgroups, state.
   * Safe after a partial create and when the sandbox already died.
   */
  async destroy(meta: SandboxMeta): Promise<void> {
    const dir = this.sandboxDir(meta.id);
    const ctx = this.runscContext(meta.network, meta.net?.netns);
    await runsc(ctx, ["delete", "--force", meta.id]).catch(() => undefined);
    // The shell that ran `runsc run` writes the init's status when runsc returns: wait for it, so
    // that nothing writes into the directory while it goes, and keep the status for late waiters.
    if (existsSync(join(dir, "runsc.log"))) {
      for (let i = 0; i < 250 && !existsSync(join(dir, "exit.code")); i++) await sleep(20);
      const exit = await this.initExit(meta.id);
      if (exit) this.#finalExits.set(meta.id, exit);
    }
    if (existsSync(meta.merged)) await unmountOverlay(meta.merged);
    if (meta.net) await teardownNetwork(meta.net, meta.id);
    await removeCgroups(meta.id);
    await rm(meta.work, { recursive: true, force: true });
    if (meta.ownsUpper) await rm(meta.upper, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

/**
 * Starts the sandbox with a foreground `runsc run` under a detached shell, which outlives this
 * process and writes runsc's exit code to `exit.code` when the init process ends (runsc keeps no
 * status once a sandbox has stopped); `runsc run`'s own info log (`init.log`, only that command's)
 * holds the exact wait status. Resolves once runsc reports the sandbox started (its pid file), or
 * fails with what runsc logged.
 */
async function startSandbox(
  ctx: RunscContext,
  id: string,
  bundle: string,
  dir: string,
  logFd: number,
): Promise<void> {
  const pidFile = join(dir, "sandbox.pid");
  const exitFile = join(dir, "exit.code");
  const runscLog = join(dir, "runsc.log");
  const command = runscArgv(ctx, [
    `--log=${runscLog}`,
    "--log-format=json",
    `--debug-log=${join(dir, "init.log")}`,
    "--debug-command=run",
    "run",
    `--bundle=${bundle}`,
    `--pid-file=${pidFile}`,
    id,
  ]);
  const wrapper = spawn(
    "sh",
    [
      "-c",
      '"$@" </dev/null; echo "$?" > "$EXIT_FILE.tmp"; mv "$EXIT_FILE.tmp" "$EXIT_FILE"',
      "sh",
      ...command,
    ],
    { detached: true, stdio: ["ignore", logFd, logFd], env: childEnv({ EXIT_FILE: exitFile }) },
  );
  wrapper.unref();
  for (let delay = 2; ; delay = Math.min(delay * 2, 10)) {
    if ((await readFile(pidFile, "utf8").catch(() => "")).trim() !== "") return;
    if (existsSync(exitFile)) {
      const messages = runscLogErrors(await readFile(runscLog, "utf8").catch(() => ""));
      throw runscError("runsc run", messages || "the sandbox ended while starting");
    }
    await sleep(delay);
  }
}

/** The idle init process: a shell loop that reaps orphans, or `sleep infinity`. */
function idleCommand(layers: readonly string[]): string[] {
  const has = (p: string) => layers.some((l) => existsSync(join(l, p)));
  const sleepPresent = has("bin/sleep") || has("usr/bin/sleep");
  if (has("bin/sh") && sleepPresent)
    return ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"];
  if (sleepPresent) return ["sleep", "infinity"];
  throw new ChalkError(
    Code.InvalidArgument,
    "command: the root filesystem has neither /bin/sh nor sleep to idle with; give the sandbox a command",
    { field: "command" },
  );
}
