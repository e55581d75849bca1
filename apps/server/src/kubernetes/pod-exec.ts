import { randomBytes } from "node:crypto";
import { stringify } from "node:querystring";
import { Readable } from "node:stream";
import { ChalkError, Code } from "@chalk/core";
import type { Process, ProcessExit, ProcessStdin, SignalLike, SpawnOptions } from "@chalk/sandbox";
import { signalName, signalNumber, waitStatusFromExitCode } from "@chalk/sandbox";
import type { KubeConfig } from "@kubernetes/client-node";
import WebSocket from "ws";

/** Channels of the Kubernetes streaming protocol (`v5.channel.k8s.io`). */
const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const STATUS = 3;
const RESIZE = 4;
const CLOSE = 255;

/** Where each exec's wrapper records its pid inside the container, for signals. */
export const EXEC_PID_DIR = "/tmp/.chalk-exec";

/**
 * The wrapper every exec runs under (`/bin/sh -c`): it exports the exec's env, changes to its
 * workdir, sets the PTY's size when it has one (`stty`, where the image has it: the API server's
 * resize message alone may arrive after the command has read its size), records its pid in {@link EXEC_PID_DIR} (the Pod exec API has no signal channel, so
 * signals are sent by a second exec that runs `kill` on that pid's process group), and `exec`s
 * the command, which keeps the pid. Values travel as positional arguments, never inside the
 * script, so no value is ever parsed by the shell.
 */
const WRAPPER = [
  "id=$1; wd=$2; rows=$3; cols=$4; n=$5; shift 5",
  'while [ "$n" -gt 0 ]; do export "$1"; shift; n=$((n-1)); done',
  'if [ -n "$wd" ]; then cd -- "$wd" || exit 126; fi',
  'if [ -n "$rows" ]; then stty rows "$rows" cols "$cols" 2>/dev/null; fi',
  `mkdir -p ${EXEC_PID_DIR} 2>/dev/null && echo $$ > ${EXEC_PID_DIR}/$id 2>/dev/null`,
  'exec "$@"',
].join("\n");

/** The script that signals an exec by its recorded pid: its process group, else the process. */
const KILLER = [
  `p=$(cat ${EXEC_PID_DIR}/$1 2>/dev/null) || exit 3`,
  '[ -n "$p" ] || exit 3',
  "kill -$2 -$p 2>/dev/null || kill -$2 $p 2>/dev/null || exit 4",
].join("\n");

/** Where a Pod's container is, for exec. */
export interface ExecTarget {
  namespace: string;
  pod: string;
  container: string;
}

/** The `Status` object the API server sends on the status channel when a command ends. */
interface ExecStatus {
  status?: string;
  reason?: string;
  message?: string;
  details?: { causes?: { reason?: string; message?: string }[] };
}

/** The exit of a command from its status: Success is 0; NonZeroExitCode carries the code. */
export function exitFromStatus(s: ExecStatus): { exitCode: number | null; error: string | undefined } {
  if (s.status === "Success") return { exitCode: 0, error: undefined };
  const code = s.details?.causes?.find((c) => c.reason === "ExitCode")?.message;
  if (s.reason === "NonZeroExitCode" && code !== undefined && /^\d+$/.test(code))
    return { exitCode: Number(code), error: undefined };
  return { exitCode: null, error: s.message ?? s.reason ?? "the command failed" };
}

/** Subprotocols offered, newest first: v5 adds the close frame that gives stdin its EOF. */
const PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

/** Opens the exec WebSocket with the kubeconfig's credentials and TLS settings. */
async function connect(
  kc: KubeConfig,
  target: ExecTarget,
  argv: readonly string[],
  tty: boolean,
  onData: (channel: number, data: Buffer) => void,
): Promise<WebSocket> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new ChalkError(Code.FailedPrecondition, "the kubeconfig names no cluster");
  const query = stringify({
    stdin: true,
    stdout: true,
    stderr: !tty,
    tty,
    container: target.container,
    command: [...argv],
  });
  const url = `${server.replace(/^http/, "ws")}/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods/${encodeURIComponent(target.pod)}/exec?${query}`;
  const opts: Record<string, unknown> = {};
  await kc.applyToHTTPSOptions(opts as never);
  return new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(url, PROTOCOLS, opts as WebSocket.ClientOptions);
    ws.binaryType = "nodebuffer";
    ws.once("open", () => resolve(ws));
    ws.once("unexpected-response", (_req, res) => {
      ws.terminate();
      const status = res.statusCode ?? 0;
      reject(
        new ChalkError(
          status === 404 ? Code.NotFound : status === 403 ? Code.PermissionDenied : Code.Unavailable,
          `exec in Pod ${target.namespace}/${target.pod}: the API server answered ${status}`,
        ),
      );
    });
    ws.once("error", (err) =>
      reject(
        new ChalkError(
          Code.Unavailable,
          `exec in Pod ${target.namespace}/${target.pod}: cannot connect (${err.message})`,
        ),
      ),
    );
    ws.on("message", (data: Buffer) => {
      if (data.length > 0) onData(data[0]!, data.subarray(1));
    });
  });
}

/**
 * Runs a command through the Pod exec API (WebSocket, `v5.channel.k8s.io`): stdout and stderr as
 * streams with backpressure (the socket is paused while a reader lags), stdin with EOF (the v5
 * close frame), the exit code from the status channel, a PTY with resize. Signals and
 * `timeoutSecs` go through {@link signalExec}: a second exec that runs `kill` inside the container.
 */
export async function spawnInPod(
  kc: KubeConfig,
  target: ExecTarget,
  argv: readonly string[],
  options: SpawnOptions & { env?: Record<string, string> },
): Promise<Process> {
  const execId = randomBytes(12).toString("hex");
  const size = options.pty ? ptySize(options.pty.cols, options.pty.rows) : undefined;
  const env = Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`);
  const wrapped = [
    "/bin/sh",
    "-c",
    WRAPPER,
    "sh",
    execId,
    options.workdir ?? "",
    size ? String(size.Height) : "",
    size ? String(size.Width) : "",
    String(env.length),
    ...env,
    ...argv,
  ];
  const tty = options.pty !== undefined;
  let ws: WebSocket | undefined;
  const resumeSocket = () => {
    if (ws?.isPaused && !stdout.readableLength && !stderr.readableLength) ws.resume();
  };
  const stdout = new Readable({ read: resumeSocket, highWaterMark: 256 * 1024 });
  const stderr = new Readable({ read: resumeSocket, highWaterMark: 256 * 1024 });
  let status: ExecStatus | undefined;
  let timedOut = false;
  /** Signals sent to the process: an exit code of 128 + one of them is that signal's death. */
  const sent = new Set<number>();
  let settle: (exit: ProcessExit) => void = () => undefined;
  let fail: (err: unknown) => void = () => undefined;
  const exited = new Promise<ProcessExit>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  exited.catch(() => undefined);
  const onData = (channel: number, data: Buffer) => {
    if (channel === STDOUT || channel === STDERR) {
      if (data.length === 0) return;
      const out = channel === STDOUT ? stdout : stderr;
      if (!out.push(data)) ws?.pause();
    } else if (channel === STATUS) {
      try {
        status = JSON.parse(data.toString("utf8")) as ExecStatus;
      } catch {
        status = { status: "Failure", message: "unreadable exec status" };
      }
    } else if (channel === CLOSE) {
      // The server closed one of our streams; nothing to do.
    }
  };
  ws = await connect(kc, target, wrapped, tty, onData);
  const socket = ws;
  // The terminal's first size, as kubectl sends it right after connecting.
  if (size) socket.send(Buffer.concat([Buffer.from([RESIZE]), Buffer.from(JSON.stringify(size))]));
  socket.on("close", () => {
    stdout.push(null);
    stderr.push(null);
    if (!status) {
      fail(
        new ChalkError(
          Code.Unavailable,
          `exec in Pod ${target.namespace}/${target.pod}: the connection closed before the command's status arrived`,
        ),
      );
      return;
    }
    const { exitCode, error } = exitFromStatus(status);
    if (exitCode === null && !timedOut && error) {
      // The command could not run at all (no such file, the container is gone).
      settle({ exitCode: 127, signal: null, timedOut: false, oomKilled: false });
      stderr.emit("exec-error", error);
      return;
    }
    // The exec API reports a death by signal N as exit code 128 + N, as runsc does locally.
    const ended = exitCode === null ? { exitCode, signal: null } : waitStatusFromExitCode(exitCode, sent);
    settle({
      exitCode: timedOut ? null : ended.exitCode,
      signal: timedOut ? "SIGKILL" : ended.signal,
      timedOut,
      oomKilled: false,
    });
  });
  socket.on("error", () => undefined);
  let timer: NodeJS.Timeout | undefined;
  const signal = async (sig: SignalLike) => {
    const n = signalNumber(sig);
    sent.add(n);
    await signalExec(kc, target, execId, n);
  };
  if (options.timeoutSecs && options.timeoutSecs > 0) {
    timer = setTimeout(() => {
      timedOut = true;
      signal("SIGKILL").catch(() => undefined);
    }, options.timeoutSecs * 1000);
    timer.unref();
    void exited.finally(() => clearTimeout(timer)).catch(() => undefined);
  }
  let stdinEnded = false;
  const send = (buf: Buffer) =>
    new Promise<void>((resolve, reject) => {
      if (socket.readyState !== socket.OPEN) {
        reject(new ChalkError(Code.FailedPrecondition, "stdin: the process has ended"));
        return;
      }
      socket.send(buf, (err?: Error) =>
        err ? reject(new ChalkError(Code.Unavailable, `stdin: ${err.message}`)) : resolve(),
      );
    });
  const stdin: ProcessStdin = {
    async write(data) {
      if (stdinEnded) throw new ChalkError(Code.FailedPrecondition, "stdin: already closed");
      const bytes = typeof data === "string" ? Buffer.from(data) : Buffer.from(data);
      for (let off = 0; off < bytes.length || off === 0; off += 32 * 1024) {
        await send(Buffer.concat([Buffer.from([STDIN]), bytes.subarray(off, off + 32 * 1024)]));
        if (bytes.length === 0) break;
      }
    },
    async end() {
      if (stdinEnded) return;
      stdinEnded = true;
      if (socket.readyState === socket.OPEN) await send(Buffer.from([CLOSE, STDIN])).catch(() => undefined);
    },
  };
  return {
    pid: 0,
    stdout,
    stderr,
    stdin,
    signal,
    async resize(cols, rows) {
      if (!tty) throw new ChalkError(Code.FailedPrecondition, "resize: the process has no PTY");
      await send(Buffer.concat([Buffer.from([RESIZE]), Buffer.from(JSON.stringify(ptySize(cols, rows)))]));
    },
    wait: () => exited,
  };
}

/**
 * Sends a signal to an exec by the pid its wrapper recorded: `kill -N -PGID` (the process and its
 * children), else `kill -N PID`, run by a second exec. Retries briefly while the wrapper has not
 * recorded its pid yet. failed_precondition when the process has already ended.
 */
export async function signalExec(
  kc: KubeConfig,
  target: ExecTarget,
  execId: string,
  signal: number,
): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const code = await runSmall(kc, target, ["/bin/sh", "-c", KILLER, "sh", execId, String(signal)]);
    if (code === 0) return;
    if (code === 4) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new ChalkError(Code.FailedPrecondition, `signal ${signalName(signal)}: the process has ended`);
}

/** Runs a small command in the Pod and returns its exit code (output discarded). */
export async function runSmall(
  kc: KubeConfig,
  target: ExecTarget,
  argv: readonly string[],
): Promise<number | null> {
  let status: ExecStatus | undefined;
  const ws = await connect(kc, target, argv, false, (channel, data) => {
    if (channel === STATUS) status = JSON.parse(data.toString("utf8")) as ExecStatus;
  });
  ws.send(Buffer.from([CLOSE, STDIN]));
  await new Promise<void>((resolve) => ws.on("close", () => resolve()));
  return status ? exitFromStatus(status).exitCode : null;
}

/**
 * A terminal size as the streaming protocol's resize message (`Width` columns, `Height` rows).
 * invalid_argument unless both are whole numbers from 1 to 65535 (a `winsize` holds 16 bits).
 */
export function ptySize(cols: number, rows: number): { Width: number; Height: number } {
  for (const [field, v] of [
    ["pty.cols", cols],
    ["pty.rows", rows],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 65535)
      throw new ChalkError(Code.InvalidArgument, `${field}: ${v} is not a whole number from 1 to 65535`, {
        field,
      });
  }
  return { Width: cols, Height: rows };
}
