import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, open, readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ChalkError, Code, parseCpu, parseMemory } from "@chalk/core";
import type { Sandbox, SandboxCreateOptions, SandboxInfo, SandboxRuntime } from "../types.js";
import { writeBundle } from "./bundle.js";
import { prepareMemoryCgroup, sandboxCgroupPath } from "./cgroups.js";
import { childEnv } from "./child-env.js";
import { LocalSandbox } from "./local-sandbox.js";
import { netnsPath, reserveNetwork, sandboxResolvConf, setupNetwork } from "./network.js";
import { mountOverlay } from "./overlay.js";
import { type RunscContext, runscArgv, runscError, runscLogErrors } from "./runsc.js";
import { defaultPtyRelayPath, defaultRunscPath } from "./runsc-binary.js";
import { SANDBOX_ID_PATTERN, type SandboxMeta, SandboxStore, validSandboxId } from "./sandbox-store.js";
import { validateCreateOptions } from "./validate.js";

/** Options for {@link LocalRuntime}. */
export interface LocalRuntimeOptions {
  /**
   * Where sandboxes' state lives: runsc's state root, bundles, writable layers, metadata.
   * Persistent, so another process on the same directory lists and reattaches to the same
   * sandboxes. Default `/var/lib/chalk/sandbox`.
   */
  stateDir?: string;
  /**
   * Path of the runsc binary. It must be the pinned gVisor (`RUNSC_VERSION`): another version
   * fails with `failed_precondition`, a missing one with `unavailable`, both before any work.
   * Default: the pinned build in the cache, `${CHALK_CACHE:-/var/cache/chalk}/gvisor/<version>/runsc`
   * (built by `bash tooling/scripts/setup.sh`).
   */
  runscPath?: string;
  /**
   * Path of the PTY relay (`chalk-pty-relay`, built with the pinned gVisor by the same setup), used
   * only by processes spawned with `pty`. Default: beside the pinned runsc in the cache.
   */
  ptyRelayPath?: string;
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
  readonly #store: SandboxStore;

  constructor(options: LocalRuntimeOptions = {}) {
    this.stateDir = options.stateDir ?? "/var/lib/chalk/sandbox";
    this.#store = new SandboxStore(
      this.stateDir,
      options.runscPath ?? defaultRunscPath(),
      options.ptyRelayPath ?? defaultPtyRelayPath(),
    );
  }

  /** The runsc binary this runtime uses (checked to be the pinned version at first use). */
  get runscPath(): string {
    return this.#store.runscPath;
  }

  /**
   * Checks that the runsc binary is the pinned gVisor (`RUNSC_VERSION`), as the first call of
   * every runtime does: `unavailable` when it is missing, `failed_precondition` when it is another
   * version, both naming the setup command. For hosts that want to fail at start.
   */
  async checkRunsc(): Promise<void> {
    await this.#store.runscContext("none");
  }

  /**
   * Creates and starts a sandbox. Everything is checked first (shapes, resource strings, that
   * each layer exists, that runsc is the pinned build); a failure midway undoes what was made.
   */
  async create(options: LocalSandboxCreateOptions): Promise<Sandbox> {
    const v = await validateCreateOptions(options);
    if (v.id !== undefined && !validSandboxId(v.id)) {
      throw new ChalkError(
        Code.InvalidArgument,
        `id: ${JSON.stringify(v.id)} is not valid; accepted: ${SANDBOX_ID_PATTERN}`,
        { field: "id" },
      );
    }
    const args = v.command ?? idleCommand(v.rootfs);
    const network = v.network ? "sandbox" : "none";
    // A missing or foreign runsc fails here with the setup command, before any work.
    const ctx = await this.#store.runscContext(network);
    const id = v.id ?? `sb-${randomBytes(6).toString("hex")}`;
    const dir = this.#store.sandboxDir(id);
    // Bundles and runsc's state carry the sandbox's environment, secrets included: root only.
    await mkdir(dirname(dir), { recursive: true, mode: 0o700 });
    await mkdir(ctx.root, { recursive: true, mode: 0o700 });
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
      await this.#store.writeMeta(meta);
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
        netns: meta.net ? netnsPath(meta.net) : undefined,
      });
      // The init process's stdout and stderr go straight from the sandbox to the log file.
      const log = await open(v.logPath ?? "/dev/null", "a");
      try {
        await startSandbox(ctx, id, bundle, dir, log.fd);
      } finally {
        await log.close();
      }
    } catch (err) {
      await this.#store.destroy(meta).catch(() => undefined);
      throw err;
    }
    return new LocalSandbox(this.#store, id);
  }

  /** Reattaches to a sandbox by id (not_found when this state directory has none). */
  async get(id: string): Promise<Sandbox> {
    await this.#store.readMeta(id);
    return new LocalSandbox(this.#store, id);
  }

  /** Lists the sandboxes of this state directory, oldest first, optionally only those with all `labels`. */
  async list(options: { labels?: Record<string, string> } = {}): Promise<SandboxInfo[]> {
    const ids = await readdir(join(this.stateDir, "sandboxes")).catch(() => [] as string[]);
    const infos: SandboxInfo[] = [];
    for (const id of ids) {
      const info = await new LocalSandbox(this.#store, id).info().catch(() => undefined);
      if (!info) continue;
      if (Object.entries(options.labels ?? {}).every(([k, val]) => info.labels[k] === val)) infos.push(info);
    }
    return infos.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  /** Reattaching does not need the runtime open; disposing it leaves every sandbox running. */
  async [Symbol.asyncDispose](): Promise<void> {}
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
