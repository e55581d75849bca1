import { ChalkError, Code } from "@chalk/core";
import { splitExecArgs } from "./exec-args.js";
import type { ExecResult, Sandbox } from "./types.js";

const decoder = new TextDecoder();

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
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
  const feed = (async () => {
    if (stdin !== undefined && stdin.length > 0) await proc.stdin.write(stdin);
    await proc.stdin.end();
  })();
  const [stdout, stderr, exit] = await Promise.all([collect(proc.stdout), collect(proc.stderr), proc.wait()]);
  // A process may exit without reading its stdin; that is not an error of exec's.
  await feed.catch(() => undefined);
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
