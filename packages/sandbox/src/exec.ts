import type { Readable } from "node:stream";
import { ChalkError, Code, formatBytes } from "@chalk/core";
import { splitExecArgs } from "./exec-args.js";
import type { ExecResult, Process, ProcessExit, Sandbox } from "./types.js";

const decoder = new TextDecoder();

/** Options for {@link collectProcess}. */
export interface CollectOptions {
  /** Bytes written to stdin before EOF. Default: stdin is closed at once. */
  stdin?: Uint8Array | string;
  /**
   * Most bytes of stdout, and separately of stderr, to keep. A process that writes more is killed
   * (SIGKILL to its process group) and the call throws resource_exhausted. Default: no limit.
   */
  maxOutputBytes?: number;
}

/** What a process wrote and how it ended. */
export interface CollectedOutput {
  stdout: Uint8Array;
  stderr: Uint8Array;
  exit: ProcessExit;
}

/**
 * Writes `data` then EOF to a process's stdin, keeping the stream's backpressure (each write waits
 * until the process side took it). Never rejects: once the process has closed its stdin or exited,
 * the bytes it did not take are dropped quietly (that is not an error of the caller's).
 */
export async function feedStdin(
  proc: Pick<Process, "stdin">,
  data: Uint8Array | string | undefined,
): Promise<void> {
  try {
    if (data !== undefined && data.length > 0) await proc.stdin.write(data);
    await proc.stdin.end();
  } catch {
    // stdin closed or the process gone: the rest is dropped.
  }
}

/**
 * Runs a spawned process to its end: feeds `stdin`, reads stdout and stderr in full (within
 * `maxOutputBytes`), and waits for the exit. The stdin feed starts with its own handler attached,
 * so a process that exits without reading its stdin can never cause an unhandled rejection.
 */
export async function collectProcess(proc: Process, options: CollectOptions = {}): Promise<CollectedOutput> {
  const feed = feedStdin(proc, options.stdin);
  const max = options.maxOutputBytes ?? Number.POSITIVE_INFINITY;
  let overflow: "stdout" | "stderr" | undefined;
  const collect = async (stream: Readable, which: "stdout" | "stderr"): Promise<Uint8Array> => {
    const chunks: Uint8Array[] = [];
    let n = 0;
    for await (const chunk of stream as AsyncIterable<Uint8Array>) {
      n += chunk.byteLength;
      if (n > max) {
        if (!overflow) {
          overflow = which;
          await proc.signal("SIGKILL").catch(() => undefined);
        }
        continue; // keep draining so the process is not blocked on a full pipe while it dies
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  };
  const [stdout, stderr, exit] = await Promise.all([
    collect(proc.stdout, "stdout"),
    collect(proc.stderr, "stderr"),
    proc.wait(),
  ]);
  await feed;
  if (overflow) {
    throw new ChalkError(
      Code.ResourceExhausted,
      `exec: ${overflow} exceeded ${formatBytes(max)} and the command was killed; stream large output with sandbox.spawn()`,
      { details: { stream: overflow, limitBytes: max } },
    );
  }
  return { stdout, stderr, exit };
}

/**
 * The buffered `exec` that every {@link Sandbox} implementation shares: spawns, writes the optional
 * stdin then EOF, reads stdout and stderr in full, and waits. A timeout throws deadline_exceeded
 * with the partial output in `details.stdout` / `details.stderr` (strings).
 */
export async function execBuffered(
  sandbox: Pick<Sandbox, "spawn">,
  args: readonly unknown[],
): Promise<ExecResult> {
  const { argv, options } = splitExecArgs(args);
  const { stdin, ...spawnOptions } = options;
  const proc = await sandbox.spawn(argv, spawnOptions);
  const { stdout, stderr, exit } = await collectProcess(proc, stdin === undefined ? {} : { stdin });
  const result: ExecResult = {
    ...exit,
    stdout,
    stderr,
    stdoutText: decoder.decode(stdout),
    stderrText: decoder.decode(stderr),
  };
  if (exit.timedOut) {
    throw new ChalkError(
      Code.DeadlineExceeded,
      `command ${JSON.stringify(argv[0])} timed out after ${options.timeoutSecs}s and was killed`,
      { details: { stdout: result.stdoutText, stderr: result.stderrText } },
    );
  }
  return result;
}
