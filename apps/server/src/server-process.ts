/**
 * `@chalk/server/testing`: starts a real `chalk-server` process (from source through tsx, or the
 * built one) on a temporary data dir and a free loopback port, for integration tests, examples and
 * benchmarks. Stops it by pid. `kill()` fails when the server logged a fatal line (an unhandled
 * rejection or uncaught exception), so every suite that uses it fails on one.
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
import { createTestCertificate } from "@chalk/rpc/testing";
import { LocalRuntime } from "@chalk/sandbox/local";

const here = fileURLToPath(new URL(".", import.meta.url));
const fromSource = import.meta.url.endsWith(".ts");
const serverMain = join(here, fromSource ? "main.ts" : "main.js");
const require = createRequire(import.meta.url);

/** A running server process. */
export interface ServerProcess {
  /** `127.0.0.1:PORT`. */
  address: string;
  /** The token it accepts, in every environment. */
  token: string;
  /** The CA file that verifies its certificate, when it serves TLS. */
  caFile: string | undefined;
  /** Its data directory. */
  dataDir: string;
  /** Its pid. */
  pid: number;
  /** Its exit status once it exited (null while it runs, or when a signal ended it). */
  exitCode: number | null;
  /** Lines it printed (JSON logs). */
  logs: string[];
  /** Lines that record an unhandled rejection or uncaught exception (pino's fatal level). */
  fatalLogs(): string[];
  /** A transport for `environment` (default "default") with `token` (default: the one above). */
  transport(environment?: string, token?: string): Transport;
  /** Env vars that point the SDK at this server. */
  env: Record<string, string>;
  /**
   * Sends a signal and waits for the process to exit. Rejects when the server logged a fatal line
   * (once per such line: a second `kill` after a restart reports only new ones).
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same data dir and port (after `kill`). */
  restart(): Promise<void>;
  /**
   * The text of its Prometheus `/metrics`, from the address its current start reported (a
   * restart listens anew). Throws when it was started without `--metrics-listen`.
   */
  metricsText(): Promise<string>;
}

/** Options for {@link startServerProcess}. */
export interface ServerProcessOptions {
  /** Reuse a data dir (default: a new temporary one). */
  dataDir?: string;
  /** Extra flags. */
  args?: string[];
  /** Serve TLS with a fresh self-signed certificate (in the data dir); transports verify it. */
  tls?: boolean;
  /** Extra Node.js flags for the server process (`--import` a module that plants a fault). */
  nodeOptions?: string[];
  /** Extra environment variables for the server process (`TMPDIR` to see its temporary files). */
  env?: Record<string, string>;
}

const TOKEN = "integration-test-token-0123456789";
/** How long a server gets to start listening (it reconciles every container of its data dir first). */
const START_TIMEOUT_MS = 90_000;

/** True for a log line that records an unhandled rejection or uncaught exception. */
export function isFatalLogLine(line: string): boolean {
  if (line.startsWith("{")) {
    try {
      return (JSON.parse(line) as { level?: unknown }).level === 60;
    } catch {
      return false;
    }
  }
  // Node's own report, should the guard ever be missing.
  return /unhandled ?rejection|uncaught ?exception/i.test(line);
}

async function launch(
  dataDir: string,
  listen: string,
  args: string[],
  logs: string[],
  nodeOptions: readonly string[],
  extraEnv: Record<string, string>,
) {
  // node itself with tsx's loader (not the tsx CLI, which would put a wrapper process between the
  // pid we signal and the server).
  const runner = fromSource
    ? ["--import", pathToFileURL(require.resolve("tsx/esm")).href, "--conditions=@chalk/source"]
    : [];
  const child = spawn(
    process.execPath,
    [
      ...runner,
      ...nodeOptions,
      serverMain,
      "--listen",
      listen,
      "--data-dir",
      dataDir,
      "--token",
      `${TOKEN}@*`,
      "--log-level",
      "debug",
      ...args,
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
      // Nothing of the caller's own server configuration leaks into the test server.
      env: {
        ...process.env,
        CHALK_TOKEN: "",
        CHALK_TOKEN_ENVIRONMENTS: "",
        CHALK_TOKENS_FILE: "",
        CHALK_TLS_CERT: "",
        CHALK_TLS_KEY: "",
        ...extraEnv,
      },
    },
  );
  const listening = await new Promise<{ address: string; metrics?: string }>((resolve, reject) => {
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`chalk-server exited (${code}):\n${logs.join("\n")}`));
    };
    // A server that never says it listens is killed, so no caller leaves one running.
    const timer = setTimeout(() => {
      child.off("exit", onExit);
      child.kill("SIGKILL");
      reject(
        new Error(`chalk-server did not listen within ${START_TIMEOUT_MS / 1000}s:\n${logs.join("\n")}`),
      );
    }, START_TIMEOUT_MS);
    child.once("exit", onExit);
    const rl = createInterface({ input: child.stdout! });
    rl.on("line", (line) => {
      logs.push(line);
      if (line.includes('"chalk-server listening"')) {
        clearTimeout(timer);
        child.off("exit", onExit);
        resolve(JSON.parse(line) as { address: string; metrics?: string });
      }
    });
    createInterface({ input: child.stderr! }).on("line", (line) => logs.push(line));
  });
  return { child, address: listening.address, metricsAddress: listening.metrics };
}

/** Starts a server process and waits until it listens. */
export async function startServerProcess(options: ServerProcessOptions = {}): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "chalk-server-"));
  const cert = options.tls ? createTestCertificate({ dir: join(dataDir, "tls") }) : undefined;
  const args = [
    ...(cert ? ["--tls-cert", cert.certFile, "--tls-key", cert.keyFile] : []),
    ...(options.args ?? []),
  ];
  const nodeOptions = options.nodeOptions ?? [];
  const extraEnv = options.env ?? {};
  const logs: string[] = [];
  let { child, address, metricsAddress } = await launch(
    dataDir,
    "127.0.0.1:0",
    args,
    logs,
    nodeOptions,
    extraEnv,
  );
  const transports: Transport[] = [];
  let reported = 0;
  const fatalLogs = () => logs.filter(isFatalLogLine);
  // Exited and its output read: "exit" can come before the last lines on stdout ("chalk-server
  // stopped"), so wait for "close" too, for at most 2 s (a grandchild holding the pipe would delay it).
  const exited = (c: ChildProcess) =>
    new Promise<void>((resolve) => {
      const hasExited = c.exitCode !== null || c.signalCode !== null;
      if (hasExited && c.stdout?.closed !== false) return resolve();
      c.once("close", () => resolve());
      if (hasExited) setTimeout(resolve, 2000).unref();
      else c.once("exit", () => setTimeout(resolve, 2000).unref());
    });
  const proc: ServerProcess = {
    get address() {
      return address;
    },
    token: TOKEN,
    caFile: cert?.certFile,
    dataDir,
    get pid() {
      return child.pid ?? 0;
    },
    get exitCode() {
      return child.exitCode;
    },
    logs,
    fatalLogs,
    transport(environment = "default", token = TOKEN) {
      const t = createTransport({
        address,
        token,
        environment,
        ...(cert ? { tls: { ca: cert.cert } } : {}),
      });
      transports.push(t);
      return t;
    },
    get env() {
      return {
        CHALK_API_SERVER: address,
        CHALK_TOKEN: TOKEN,
        CHALK_ENVIRONMENT: "default",
        ...(cert ? { CHALK_TLS_CA: cert.certFile } : {}),
      };
    },
    async kill(signal = "SIGTERM") {
      const done = exited(child);
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await done;
      const fatal = fatalLogs();
      if (fatal.length > reported) {
        const fresh = fatal.slice(reported);
        reported = fatal.length;
        throw new Error(
          `chalk-server (data dir ${dataDir}) logged ${fresh.length} fatal line(s): an unhandled rejection or uncaught exception is a server bug\n${fresh.join("\n")}`,
        );
      }
    },
    async restart() {
      ({ child, address, metricsAddress } = await launch(
        dataDir,
        address,
        args,
        logs,
        nodeOptions,
        extraEnv,
      ));
    },
    async metricsText() {
      if (!metricsAddress) throw new Error("chalk-server was started without --metrics-listen");
      return (await fetch(`http://${metricsAddress}/metrics`)).text();
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

/** The namespace the Kubernetes backend uses for an environment (tests delete the ones they made). */
export { namespaceOf } from "./kubernetes/kubernetes-names.js";
