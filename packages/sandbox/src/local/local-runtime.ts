import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ChalkError, Code, notFound, parseCpu, parseMemory } from "@chalk/core";
import { execBuffered } from "../exec.js";
import { signalNumber } from "../signals.js";
import type {
  ExecOptions,
  ExecResult,
  Process,
  ProcessExit,
  Sandbox,
  SandboxCreateOptions,
  SandboxInfo,
  SandboxRuntime,
  SandboxState,
  SandboxStopOptions,
  SignalLike,
  SpawnOptions,
} from "../types.js";
import { writeBundle } from "./bundle.js";
import { LocalProcess } from "./local-process.js";
import { type SandboxNetwork, sandboxResolvConf, setupNetwork, teardownNetwork } from "./network.js";
import { findRunsc, type RunscContext, runsc, runscArgv, runscError } from "./runsc.js";
import { validateCreateOptions } from "./validate.js";

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
   * after `stop()` (with overlayfs whiteouts for deletions), so an image builder can turn it into a
   * layer. Default: a layer inside the sandbox's state, deleted with it.
   */
  writableLayerDir?: string;
}

/** What the runtime records about a sandbox, in `<stateDir>/sandboxes/<id>/meta.json`. */
interface SandboxMeta {
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

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, (err, _out, stderr) =>
      err
        ? reject(new ChalkError(Code.Internal, `${cmd}: ${stderr.trim() || err.message}`, { cause: err }))
        : resolve(),
    ),
  );
}

/**
 * Runs gVisor sandboxes in this process's host, with no server: each sandbox is a `runsc`
 * instance over an overlayfs of its root filesystem layers, with cgroup limits and, on request,
 * its own network namespace. State is kept on disk, so a new process reattaches with
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

  constructor(options: LocalRuntimeOptions = {}) {
    this.stateDir = options.stateDir ?? "/var/lib/chalk/sandbox";
    this.#runscPath = options.runscPath;
  }

  /** @internal The runsc context of a sandbox. */
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

  async create(options: LocalSandboxCreateOptions): Promise<Sandbox> {
    const v = await validateCreateOptions(options);
    const network = v.network ? "host" : "none";
    this.runscContext(network); // fails with the install hint, before any work, when runsc is missing
    const id = v.id ?? `sb-${randomBytes(6).toString("hex")}`;
    if (v.id !== undefined && !ID_PATTERN.test(v.id)) {
      throw new ChalkError(
        Code.InvalidArgument,
        `id: ${JSON.stringify(v.id)} is not valid; accepted: ${ID_PATTERN}`,
        {
          field: "id",
        },
      );
    }
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
      await Promise.all([
        mkdir(upper, { recursive: true }),
        mkdir(meta.work, { recursive: true }),
        mkdir(meta.merged),
      ]);
      const lower = [...v.rootfs].reverse().join(":");
      await run("mount", [
        "-t",
        "overlay",
        "overlay",
        "-o",
        `lowerdir=${lower},upperdir=${upper},workdir=${meta.work}`,
        meta.merged,
      ]);
      await this.#writeMeta(meta);

      const mounts = v.mounts.map((m) => ({ ...m }));
      if (v.network) {
        meta.net = await setupNetwork(randomBytes(4).toString("hex"), id);
        await this.#writeMeta(meta);
        const resolv = join(dir, "resolv.conf");
        await writeFile(resolv, await sandboxResolvConf());
        mounts.push({ source: resolv, target: "/etc/resolv.conf", readOnly: true });
      }
      await prepareCgroup(id, v.memory === undefined ? undefined : parseMemory(v.memory));
      const bundle = join(dir, "bundle");
      await mkdir(bundle);
      await writeBundle(bundle, {
        id,
        rootfs: meta.merged,
        args: v.command ?? idleCommand(v.rootfs),
        env: v.env,
        workdir: v.workdir,
        cpuMillis: v.cpu === undefined ? undefined : parseCpu(v.cpu),
        memoryBytes: v.memory === undefined ? undefined : parseMemory(v.memory),
        pids: v.pids,
        mounts,
        cgroupsPath: `/chalk/${id}/sandbox`,
      });
      // The init process's stdout and stderr go straight from the sandbox to the log file.
      const log = await open(v.logPath ?? "/dev/null", "a");
      try {
        await startSandbox(this.runscContext(network, meta.net?.netns), id, bundle, dir, log.fd);
      } finally {
        await log.close();
      }
    } catch (err) {
      await this.#destroy(meta).catch(() => undefined);
      throw err;
    }
    return new LocalSandbox(this, id);
  }

  async get(id: string): Promise<Sandbox> {
    await this.readMeta(id);
    return new LocalSandbox(this, id);
  }

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
    await writeFile(`${file}.tmp`, JSON.stringify(meta));
    await rename(`${file}.tmp`, file);
  }

  /** @internal Deletes the sandbox and everything made for it; safe after a partial create. */
  async destroy(id: string): Promise<void> {
    await this.#destroy(await this.readMeta(id));
  }

  async #destroy(meta: SandboxMeta): Promise<void> {
    const ctx = this.runscContext(meta.network, meta.net?.netns);
    await runsc(ctx, ["delete", "--force", meta.id]).catch(() => undefined);
    if (existsSync(meta.merged))
      await run("umount", [meta.merged]).catch(() => run("umount", ["-l", meta.merged]));
    if (meta.net) await teardownNetwork(meta.net, meta.id);
    await removeCgroups(meta.id);
    await rm(meta.work, { recursive: true, force: true });
    if (meta.ownsUpper) await rm(meta.upper, { recursive: true, force: true });
    await rm(this.sandboxDir(meta.id), { recursive: true, force: true });
  }
}

/**
 * Starts the sandbox with a foreground `runsc run` under a detached shell, which outlives this
 * process and writes runsc's exit status (the init process's) to `exit.code` when the sandbox ends:
 * runsc keeps no exit status once a sandbox has stopped. Resolves once runsc reports the sandbox
 * started (its pid file), or fails with what runsc logged.
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
    { detached: true, stdio: ["ignore", logFd, logFd], env: { ...process.env, EXIT_FILE: exitFile } },
  );
  wrapper.unref();
  for (let delay = 2; ; delay = Math.min(delay * 2, 25)) {
    if ((await readFile(pidFile, "utf8").catch(() => "")).trim() !== "") return;
    if (existsSync(exitFile)) {
      const messages = (await readFile(runscLog, "utf8").catch(() => ""))
        .split("\n")
        .map((l) => {
          try {
            return JSON.parse(l) as { msg?: string; level?: string };
          } catch {
            return undefined;
          }
        })
        .filter((m) => m?.level === "error" || m?.level === "warning")
        .map((m) => m?.msg ?? "")
        .join("\n");
      throw runscError("runsc run", messages || "the sandbox ended while starting");
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** The idle init process: a shell loop that reaps orphans, or `sleep infinity`. */
function idleCommand(layers: readonly string[]): string[] {
  const has = (p: string) => layers.some((l) => existsSync(join(l, p)));
  const sleep = has("bin/sleep") || has("usr/bin/sleep");
  if (has("bin/sh") && sleep)
    return ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"];
  if (sleep) return ["sleep", "infinity"];
  throw new ChalkError(
    Code.InvalidArgument,
    "command: the root filesystem has neither /bin/sh nor sleep to idle with; give the sandbox a command",
    { field: "command" },
  );
}

const CGROUP_ROOT = "/sys/fs/cgroup";

/**
 * Creates the sandbox's own parent memory cgroup (`/chalk/<id>`; runsc puts the sandbox in
 * `/chalk/<id>/sandbox`). runsc removes its cgroup the moment the sandbox dies, taking its OOM count
 * with it; the parent outlives it. Its limit is one page below the sandbox's, so an overuse is the
 * parent's OOM and is counted where it can still be read. The sandbox still sees the exact limit.
 */
async function prepareCgroup(id: string, memoryBytes: number | undefined): Promise<void> {
  const dir = join(CGROUP_ROOT, "memory", "chalk", id);
  await mkdir(dir, { recursive: true });
  if (memoryBytes !== undefined)
    await writeFile(join(dir, "memory.limit_in_bytes"), String(memoryBytes - 4096));
}

/** Removes the cgroups runsc and {@link prepareCgroup} left for a sandbox, in every controller. */
async function removeCgroups(id: string): Promise<void> {
  const controllers = await readdir(CGROUP_ROOT).catch(() => [] as string[]);
  for (const c of controllers) {
    const parent = join(CGROUP_ROOT, c, "chalk", id);
    for (const d of [join(parent, "sandbox"), parent]) await rmdir(d).catch(() => undefined);
  }
}

/**
 * Whether the sandbox's memory limit was hit. cgroup v1 counts OOM kills on the killed task's own
 * cgroup, which runsc deletes with the sandbox, so this reads the parent's failed-charge count:
 * gVisor's memory is shared memory that cannot be reclaimed without swap, so failed charges at the
 * limit end in the OOM kill of the sentry. Callers ask only once the sandbox died by SIGKILL.
 */
async function memoryLimitHit(id: string): Promise<boolean> {
  const failcnt = await readFile(join(CGROUP_ROOT, "memory", "chalk", id, "memory.failcnt"), "utf8").catch(
    () => "0",
  );
  return Number(failcnt.trim()) > 0;
}

class LocalSandbox implements Sandbox {
  constructor(
    readonly runtime: LocalRuntime,
    readonly id: string,
  ) {}

  async #context(): Promise<{ meta: SandboxMeta; ctx: RunscContext }> {
    const meta = await this.runtime.readMeta(this.id);
    return { meta, ctx: this.runtime.runscContext(meta.network, meta.net?.netns) };
  }

  async #state(ctx: RunscContext): Promise<{ state: SandboxState; pid: number | undefined }> {
    try {
      const s = JSON.parse(await runsc(ctx, ["state", this.id])) as { status: string; pid: number };
      const state: SandboxState =
        s.status === "running" ? "running" : s.status === "created" ? "created" : "stopped";
      return { state, pid: state === "running" && s.pid > 0 ? s.pid : undefined };
    } catch {
      return { state: "stopped", pid: undefined };
    }
  }

  async info(): Promise<SandboxInfo> {
    const { meta, ctx } = await this.#context();
    const { state, pid } = await this.#state(ctx);
    return {
      id: this.id,
      state,
      createdAt: new Date(meta.createdAt),
      labels: meta.labels,
      address: meta.net?.address,
      hostPid: pid,
      resources: meta.resources,
    };
  }

  async spawn(argv: readonly string[], options: SpawnOptions = {}): Promise<Process> {
    const { meta, ctx } = await this.#context();
    return LocalProcess.start({
      ctx,
      sandboxId: this.id,
      sandboxDir: this.runtime.sandboxDir(this.id),
      defaultWorkdir: meta.workdir,
      argv,
      options,
      sandboxGone: async () => (await this.#state(ctx)).state !== "running",
      oomKilled: () => memoryLimitHit(this.id),
    });
  }

  exec(...args: [...argv: string[], options: ExecOptions] | string[]): Promise<ExecResult> {
    return execBuffered(this, args);
  }

  async signal(signal: SignalLike): Promise<void> {
    const n = signalNumber(signal);
    const { ctx } = await this.#context();
    await runsc(ctx, ["kill", "--all", this.id, String(n)]);
  }

  async wait(): Promise<ProcessExit> {
    await this.runtime.readMeta(this.id);
    // The shell that started the sandbox writes runsc's exit status when the init process ends.
    const file = join(this.runtime.sandboxDir(this.id), "exit.code");
    let status: number | undefined;
    while (status === undefined) {
      const t = await readFile(file, "utf8").catch(() => undefined);
      if (t !== undefined) status = Number.parseInt(t, 10);
      else if (!existsSync(this.runtime.sandboxDir(this.id))) throw notFound("sandbox", this.id);
      else await new Promise((r) => setTimeout(r, 100));
    }
    const oom = (status === 137 || status === 128) && (await memoryLimitHit(this.id));
    if (oom) return { exitCode: null, signal: "SIGKILL", timedOut: false, oomKilled: true };
    return { exitCode: status, signal: null, timedOut: false, oomKilled: false };
  }

  async stop(options: SandboxStopOptions = {}): Promise<void> {
    const grace = options.gracePeriodSeconds ?? 0;
    if (!(grace >= 0 && grace <= 86_400)) {
      throw new ChalkError(Code.InvalidArgument, `gracePeriodSeconds: ${grace}; accepted: 0 to 86400`, {
        field: "gracePeriodSeconds",
      });
    }
    const { ctx } = await this.#context();
    if (grace > 0 && (await this.#state(ctx)).state === "running") {
      await runsc(ctx, ["kill", "--all", this.id, "15"]).catch(() => undefined);
      const deadline = Date.now() + grace * 1000;
      while (Date.now() < deadline && (await this.#state(ctx)).state === "running") {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    await runsc(ctx, ["kill", "--all", this.id, "9"]).catch(() => undefined);
    await this.runtime.destroy(this.id);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop().catch((err) => {
      if (ChalkError.from(err).code !== Code.NotFound) throw err;
    });
  }
}

/** @internal Exposed for tests: whether a path is a directory. */
export async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}
