/**
 * `@chalk/server/testing`: starts a real `chalk-server` process (from source through tsx, or the
 * built one) on a temporary data dir and a free loopback port, for integration tests, examples and
 * benchmarks. Stops it by pid.
 *
 * @example
 * ```ts
 * import { startServerProcess } from "@chalk/server/testing";
 * const server = await startServerProcess();
 * try {
 *   // CHALK_API_SERVER etc. for the SDK: server.env
 * } finally {
 *   await server.kill();
 * }
 * ```
 *
 * @packageDocumentation
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { removeDisk } from "@chalk/disk";
import { createTransport, type Transport } from "@chalk/rpc";
import { LocalRuntime } from "@chalk/sandbox/local";

const here = fileURLToPath(new URL(".", import.meta.url));
const fromSource = import.meta.url.endsWith(".ts");
const serverMain = join(here, fromSource ? "main.ts" : "main.js");
const require = createRequire(import.meta.url);

/** A running server process. */
export interface ServerProcess {
  /** `127.0.0.1:PORT`. */
  address: string;
  /** The token it accepts. */
  token: string;
  /** Its data directory. */
  dataDir: string;
  /** Its pid. */
  pid: number;
  /** Lines it printed (JSON logs). */
  logs: string[];
  /** A transport for `environment` (default "default"). */
  transport(environment?: string): Transport;
  /** Env vars that point the SDK at this server. */
  env: Record<string, string>;
  /** Sends a signal and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same data dir and port (after `kill`). */
  restart(): Promise<void>;
}

/** Options for {@link startServerProcess}. */
export interface ServerProcessOptions {
  /** Reuse a data dir (default: a new temporary one). */
  dataDir?: string;
  /** Extra flags. */
  args?: string[];
}

const TOKEN = "integration-test-token-0123456789";

async function launch(dataDir: string, listen: string, args: string[], logs: string[]) {
  // node itself with tsx's loader (not the tsx CLI, which would put a wrapper process between the
  // pid we signal and the server).
  const runner = fromSource
    ? ["--import", pathToFileURL(require.resolve("tsx/esm")).href, "--conditions=@chalk/source"]
    : [];
  const child = spawn(
    process.execPath,
    [
      ...runner,
      serverMain,
      "--listen",
      listen,
      "--data-dir",
      dataDir,
      "--token",
      TOKEN,
      "--log-level",
      "debug",
      ...args,
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CHALK_TOKEN: "" } },
  );
  const address = await new Promise<string>((resolve, reject) => {
    const onExit = (code: number | null) =>
      reject(new Error(`chalk-server exited (${code}):\n${logs.join("\n")}`));
    child.once("exit", onExit);
    const rl = createInterface({ input: child.stdout! });
    rl.on("line", (line) => {
      logs.push(line);
      if (line.includes('"chalk-server listening"')) {
        child.off("exit", onExit);
        resolve((JSON.parse(line) as { address: string }).address);
      }
    });
    createInterface({ input: child.stderr! }).on("line", (line) => logs.push(line));
  });
  return { child, address };
}

/** Starts a server process and waits until it listens. */
export async function startServerProcess(options: ServerProcessOptions = {}): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "chalk-server-"));
  const args = options.args ?? [];
  const logs: string[] = [];
  let { child, address } = await launch(dataDir, "127.0.0.1:0", args, logs);
  const transports: Transport[] = [];
  const exited = (c: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) resolve();
      else c.once("exit", () => resolve());
    });
  const proc: ServerProcess = {
    get address() {
      return address;
    },
    token: TOKEN,
    dataDir,
    get pid() {
      return child.pid ?? 0;
    },
    logs,
    transport(environment = "default") {
      const t = createTransport({ address, token: TOKEN, environment });
      transports.push(t);
      return t;
    },
    get env() {
      return { CHALK_API_SERVER: address, CHALK_TOKEN: TOKEN, CHALK_ENVIRONMENT: "default" };
    },
    async kill(signal = "SIGTERM") {
      const done = exited(child);
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await done;
    },
    async restart() {
      ({ child, address } = await launch(dataDir, address, args, logs));
    },
  };
  return proc;
}

/**
 * Removes a data dir created by {@link startServerProcess}, after stopping every sandbox left in it
 * (containers outlive their server by design) and unmounting its volumes' file systems (each volume
 * with a quota is one, loop-mounted). Call after the server was killed.
 */
export async function removeDataDir(dir: string): Promise<void> {
  const runtime = new LocalRuntime({ stateDir: join(dir, "sandboxes") });
  for (const info of await runtime.list().catch(() => [])) {
    await (await runtime.get(info.id).catch(() => undefined))?.stop().catch(() => undefined);
  }
  const disks = join(dir, "volumes", "disks");
  for (const env of readdirSafe(disks)) {
    for (const image of readdirSafe(join(disks, env)).filter((f) => f.endsWith(".img"))) {
      const volume = join(dir, "volumes", "volumes", env, image.slice(0, -".img".length));
      await removeDisk(join(disks, env, image), volume).catch(() => undefined);
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

function readdirSafe(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}
