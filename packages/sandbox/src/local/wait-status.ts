import { signalName } from "../signals.js";

/** How a process ended, before timeouts and OOM kills are known. */
export interface WaitStatus {
  /** Exit code, or null when a signal ended the process. */
  exitCode: number | null;
  /** Signal name (`"SIGKILL"`), or null when the process exited. */
  signal: string | null;
}

/**
 * runsc ends every command by logging `Exiting with status: N`, where N is the raw wait status of
 * the process it ran (`run` and `exec` then exit with `128 + signal` or the exit code, and
 * `runsc wait` prints the same, none of which tells `exit 137` from SIGKILL). Its info-level log,
 * sent to a file with `--debug-log`, carries that line (from `main.go` in the 2022 runsc, from
 * `cli.go` in the pinned one); this finds the last one.
 */
export function waitStatusFromLog(log: string): WaitStatus | undefined {
  const matches = [...log.matchAll(/^I[\d.: ]+\d+ [\w.-]+\.go:\d+\] Exiting with status: (\d+)$/gm)];
  const raw = matches.at(-1)?.[1];
  return raw === undefined ? undefined : decodeWaitStatus(Number(raw));
}

/** Decodes a Linux wait status (`WIFSIGNALED` / `WTERMSIG` / `WEXITSTATUS`). */
export function decodeWaitStatus(status: number): WaitStatus {
  const sig = status & 0x7f;
  if (sig !== 0 && sig !== 0x7f) return { exitCode: null, signal: signalName(sig) };
  return { exitCode: (status >> 8) & 0xff, signal: null };
}

/**
 * The best reading of a bare runsc exit code, for when its log has no status line: above 128 it is
 * `128 + signal` when the caller knows it sent that signal, else an exit code.
 */
export function waitStatusFromExitCode(code: number, sentSignals: ReadonlySet<number>): WaitStatus {
  if (code > 128 && code < 128 + 65 && sentSignals.has(code - 128)) {
    return { exitCode: null, signal: signalName(code - 128) };
  }
  return { exitCode: code, signal: null };
}
