import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, lstatSync, mkdirSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ChalkError, Code, invalidArgument, parseCpu, parseMemory } from "@chalk/core";
import { createDisk } from "@chalk/disk";
import type { Sandbox, SandboxCreateOptions, SandboxInfo, SandboxRuntime } from "../types.js";
import { INIT_PATH, scrubBundleEnv, writeBundle } from "./bundle.js";
import { prepareMemoryCgroup, sandboxCgroupPath } from "./cgroups.js";
import { childEnv } from "./child-env.js";
import { readSmall } from "./local-process.js";
import { LocalSandbox } from "./local-sandbox.js";
import { netnsPath, reserveNetwork, sandboxResolvConf, setupNetwork } from "./network.js";
import { mountOverlay } from "./overlay.js";
import { type RunscContext, runscArgv, runscError, runscLogErrors } from "./runsc.js";
import {
  DEFAULT_INIT_PATH,
  defaultLogWriterPath,
  defaultPtyRelayPath,
  defaultRunscPath,
  RUNSC_SETUP_COMMAND,
  requireExecutable,
} from "./runsc-binary.js";
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
  /**
   * Path of the size-bounded log writer (`chalk-log-writer`, built with the pinned gVisor by the
   * same setup), used by sandboxes created with a `logPath`. Default: beside the pinned runsc.
   */
  logWriterPath?: string;
  /**
   * Path of the static reaping init that init processes run under (see `SandboxCreateOptions.init`),
   * bind-mounted read-only into each sandbox. Default `/usr/bin/tini-static` (Debian's `tini`).
   */
  initPath?: string;
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
  readonly #logWriterPath: string;
  readonly #initPath: string;

  constructor(options: LocalRuntimeOptions = {}) {
    this.stateDir = options.stateDir ?? "/var/lib/chalk/sandbox";
    this.#store = new SandboxStore(
      this.stateDir,
      options.runscPath ?? defaultRunscPath(),
      options.ptyRelayPath ?? defaultPtyRelayPath(),
    );
    this.#logWriterPath = options.logWriterPath ?? defaultLogWriterPath();
    this.#initPath = options.initPath ?? DEFAULT_INIT_PATH;
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
    if (v.disk && options.writableLayerDir !== undefined) {
      throw invalidArgument(
        "disk",
        "a writableLayerDir belongs to the caller, who limits it",
        "disk or writableLayerDir, not both",
      );
    }
    const args = v.command ?? idleCommand(v.rootfs);
    const network = v.network ? "sandbox" : "none";
    // A missing or foreign runsc fails here with the setup command, before any work.
    const ctx = await this.#store.runscContext(network);
    if (v.init) requireInit(this.#initPath);
    if (v.logPath) requireExecutable(this.#logWriterPath, "the log writer (chalk-log-writer)");
    const id = v.id ?? `sb-${randomBytes(6).toString("hex")}`;
    const dir = this.#store.sandboxDir(id);
    // Bundles and runsc's state carry the sandbox's environment, secrets included: root only.
    // The state directory's small operations (directories, metadata, the bundle) are synchronous:
    // each takes microseconds on the local disk, against a trip through libuv's thread pool per
    // async call that measured milliseconds each on a loaded machine (see LocalProcess.start).
    try {
      mkdirSync(dirname(dir), { recursive: true, mode: 0o700 });
      mkdirSync(ctx.root, { recursive: true, mode: 0o700 });
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") {
        throw new ChalkError(Code.AlreadyExists, `sandbox ${JSON.stringify(id)} already exists`);
      }
      throw ChalkError.from(err);
    }

    // With a disk limit, the writable layer (and overlayfs's work dir, which must share its file
    // system) lives on a file system of that size of its own.
    const disk = v.disk ? { image: join(dir, "disk.img"), mountPoint: join(dir, "disk") } : undefined;
    const layerRoot = disk?.mountPoint ?? dir;
    const upper = options.writableLayerDir ?? join(layerRoot, "upper");
    const mounts = v.mounts.map((m) => ({ ...m }));
    const resolv = join(dir, "resolv.conf");
    if (v.network) mounts.push({ source: resolv, target: "/etc/resolv.conf", readOnly: true });
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
        : join(layerRoot, "work"),
      merged: join(dir, "rootfs"),
      ownsUpper: options.writableLayerDir === undefined,
      disk,
      mountTargets: [...mounts.map((m) => m.target), ...(v.init ? [INIT_PATH] : [])],
      workdir: v.workdir,
      resources: { cpu: v.cpu, memory: v.memory, pids: v.pids, disk: v.disk?.quantity },
    };
    const memoryBytes = v.memory === undefined ? undefined : parseMemory(v.memory);
    try {
      // Recorded before anything is made, so that stop() (from any process) finds all of it.
      if (v.network) meta.net = await reserveNetwork(randomBytes(4).toString("hex"), id);
      this.#store.writeMeta(meta);
      // The root filesystem, the network and the memory cgroup do not depend on each other: made
      // at once. Each settles before a failure is thrown, so the cleanup finds nothing half-made.
      const net = meta.net;
      await settleAll([
        (async () => {
          if (disk && v.disk) await createDisk({ ...disk, bytes: v.disk.bytes });
          mkdirSync(upper, { recursive: true });
          mkdirSync(meta.work, { recursive: true });
          mkdirSync(meta.merged);
          await mountOverlay({ layers: v.rootfs, upper, work: meta.work, merged: meta.merged });
          const tmp = rootfsTmp(meta.merged);
          if (tmp) mounts.push({ source: tmp, target: "/tmp", readOnly: false });
        })(),
        net &&
          (async () => {
            await setupNetwork(net, id);
            await writeFile(resolv, await sandboxResolvConf());
          })(),
        prepareMemoryCgroup(id, memoryBytes),
      ]);
      const bundle = join(dir, "bundle");
      mkdirSync(bundle);
      writeBundle(bundle, {
        id,
        rootfs: meta.merged,
        args,
        env: v.env,
        workdir: v.workdir,
        cpuMillis: v.cpu === undefined ? undefined : parseCpu(v.cpu),
        memoryBytes,
        pids: v.pids,
        mounts,
        init: v.init ? this.#initPath : undefined,
        cgroupsPath: sandboxCgroupPath(id),
        netns: meta.net ? netnsPath(meta.net) : undefined,
      });
      await startSandbox(
        ctx,
        id,
        bundle,
        dir,
        v.logPath ? { path: v.logPath, maxBytes: v.logMaxBytes, writer: this.#logWriterPath } : undefined,
      );
      // runsc holds the config (environment and all) in its own state now: the bundle's copy of
      // the environment goes, so secrets stay on disk in one place only while the sandbox runs.
      scrubBundleEnv(bundle);
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

/** Where an init's output goes: a size-bounded log file through the log writer. */
interface InitLog {
  path: string;
  maxBytes: number;
  writer: string;
}

/**
 * Starts the sandbox with a foreground `runsc run` under a detached shell, which outlives this
 * process and writes runsc's exit code to `exit.code` when the init process ends (runsc keeps no
 * status once a sandbox has stopped); `runsc run`'s own info log (`init.log`, only that command's)
 * holds the exact wait status. With a log, the init's stdout and stderr go through a pipe to
 * `chalk-log-writer` in the same detached shell, which keeps the file under its bound at every
 * moment; the exit status is recorded once the writer has written the last byte, so a finished
 * sandbox's log is complete. Resolves once runsc reports the sandbox started (its pid file), or
 * fails with what runsc logged.
 */
async function startSandbox(
  ctx: RunscContext,
  id: string,
  bundle: string,
  dir: string,
  log: InitLog | undefined,
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
  const record = 'echo "$?" > "$EXIT_FILE.tmp"';
  const publish = 'mv "$EXIT_FILE.tmp" "$EXIT_FILE"';
  const script = log
    ? `{ "$@" </dev/null 2>&1; ${record}; } | "$LOG_WRITER" "$LOG_MAX_BYTES" "$LOG_PATH"; ${publish}`
    : `"$@" </dev/null >/dev/null 2>&1; ${record}; ${publish}`;
  const env = log
    ? childEnv({
        EXIT_FILE: exitFile,
        LOG_WRITER: log.writer,
        LOG_MAX_BYTES: String(log.maxBytes),
        LOG_PATH: log.path,
      })
    : childEnv({ EXIT_FILE: exitFile });
  const wrapper = spawn("sh", ["-c", script, "sh", ...command], { detached: true, stdio: "ignore", env });
  wrapper.unref();
  // Polled every 2 ms, with a synchronous read of a file of a few bytes (runsc offers no other
  // signal of the start): a backoff to 10 ms measured 5 ms of the start on average.
  for (;;) {
    if (readSmall(pidFile).trim() !== "") return;
    if (existsSync(exitFile)) {
      const messages = runscLogErrors(await readFile(runscLog, "utf8").catch(() => ""));
      throw runscError("runsc run", messages || "the sandbox ended while starting");
    }
    await sleep(2);
  }
}

/**
 * The root filesystem's own `/tmp`, to mount explicitly at `/tmp`: gVisor mounts a memory file
 * system on an empty or missing `/tmp` unless the config mounts something there, which would
 * charge files in `/tmp` to the sandbox's memory and keep them off its disk limit. Mounting the
 * directory on itself keeps `/tmp` what it is in Docker: part of the writable layer. A missing
 * `/tmp` is made (mode 1777, in the writable layer). Checked before the sandbox runs, so nothing
 * changes it meanwhile: a `/tmp` that is a symlink (which would name a path on the host) or not a
 * directory is left alone (undefined).
 */
function rootfsTmp(merged: string): string | undefined {
  const tmp = join(merged, "tmp");
  const st = lstatSync(tmp, { throwIfNoEntry: false });
  if (st === undefined) {
    mkdirSync(tmp, { mode: 0o1777 });
    chmodSync(tmp, 0o1777);
    return tmp;
  }
  return st.isDirectory() ? tmp : undefined;
}

/** Waits for every promise (undefined: nothing to wait for), then throws the first failure. */
async function settleAll(work: readonly (Promise<unknown> | undefined)[]): Promise<void> {
  const results = await Promise.allSettled(work.filter((w) => w !== undefined));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

/** Fails with `unavailable`, naming the setup command, when the reaping init is not installed. */
function requireInit(path: string): void {
  try {
    requireExecutable(path, "the reaping init (tini)");
  } catch (err) {
    throw new ChalkError(
      Code.Unavailable,
      `the reaping init (tini) is not at ${path}: install Debian's tini package (\`${RUNSC_SETUP_COMMAND}\` does), or create the sandbox with init: false`,
      { cause: err },
    );
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
