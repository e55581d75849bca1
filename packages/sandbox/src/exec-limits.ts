import { ChalkError, Code, formatBytes } from "@chalk/core";

/**
 * The kernel's limits on what a program may be started with, which every process in a sandbox meets
 * again when it starts another (a shell running a command copies its whole environment into the
 * `execve`). A string over them makes every such `execve` fail (Linux: `E2BIG`, gVisor:
 * `ENAMETOOLONG`, "File name too long"), so they are checked before any work, once, here.
 *
 * Linux: `MAX_ARG_STRLEN` (32 pages) per string, `ARG_MAX` (a quarter of the 8 MiB stack limit
 * sandboxes get) for all of them; gVisor's sentry: the same 32 pages per string and 2 MiB for each
 * of argv and the environment (`ExecMaxElemSize`, `ExecMaxTotalSize` in `sys_thread.go`).
 */
export const EXEC_LIMITS = {
  /** Bytes of one argument or one `NAME=value` environment string, its terminating NUL included. */
  maxArgStrlen: 128 * 1024,
  /** Bytes of all arguments and environment strings together (NULs and one 8-byte pointer each included). */
  argMax: 2 * 1024 * 1024,
  /**
   * Bytes of `argMax` kept free for what is added after the check: a shell's `PWD`, `SHLVL`, `_`
   * and `OLDPWD`, the program's path and the loader's auxiliary vector.
   */
  argMaxMargin: 128 * 1024,
} as const;

const encoder = new TextEncoder();

/** Bytes of a string as the kernel sees it: its UTF-8 encoding and a NUL. */
function stringBytes(s: string): number {
  return encoder.encode(s).byteLength + 1;
}

/**
 * Checks an argv and an environment against {@link EXEC_LIMITS}: each argument and each
 * `NAME=value` string at most `maxArgStrlen` bytes with its NUL, all together at most
 * `argMax - argMaxMargin`. Throws `invalid_argument` naming the argument (`argv[1]`) or the
 * variable (`env.BIG`) and the limit.
 *
 * @param argvField - The field name of `argv` in messages (`argv`, `command`).
 * @param envField - The field name of `env` in messages.
 */
export function checkExecLimits(
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
  argvField = "argv",
  envField = "env",
): void {
  const perString = EXEC_LIMITS.maxArgStrlen;
  let total = 0;
  const tooLong = (field: string, what: string, bytes: number) =>
    new ChalkError(
      Code.InvalidArgument,
      `${field}: ${what} takes ${bytes} bytes with its NUL, over the kernel's limit of ${perString} bytes (${formatBytes(perString)}, MAX_ARG_STRLEN) per argument or environment string; pass large data in a file or on stdin`,
      { field },
    );
  argv.forEach((arg, i) => {
    const bytes = stringBytes(arg);
    if (bytes > perString) throw tooLong(`${argvField}[${i}]`, "the argument", bytes);
    total += bytes + 8;
  });
  for (const [name, value] of Object.entries(env)) {
    const bytes = stringBytes(`${name}=${value}`);
    if (bytes > perString) throw tooLong(`${envField}.${name}`, `"${name}=…"`, bytes);
    total += bytes + 8;
  }
  const max = EXEC_LIMITS.argMax - EXEC_LIMITS.argMaxMargin;
  if (total > max) {
    throw new ChalkError(
      Code.InvalidArgument,
      `${envField}: the arguments and environment take ${total} bytes, over the limit of ${max} bytes (the kernel's ARG_MAX, ${formatBytes(EXEC_LIMITS.argMax)}, less ${formatBytes(EXEC_LIMITS.argMaxMargin)} kept for what a shell adds); pass large data in a file or on stdin`,
      { field: envField },
    );
  }
}
