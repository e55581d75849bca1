import { ChalkError, Code } from "@chalk/core";

/** A usage error: bad flags or arguments, found before any work. Exits 2 (125 for exec and run -- CMD). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Ends the command with this exit code, after the command printed what it had to say. */
export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
    this.name = "ExitCode";
  }
}

/**
 * Exit codes of chalk's own failures. Most commands use the conventional 1 (an error) and 2 (a usage
 * error). `exec` and `run -- CMD` pass the process's exit code through, so chalk's own failures use
 * docker's codes there, which a process rarely uses: 125 (chalk or the server failed), 126 (the
 * command cannot be run), 127 (the command was not found).
 */
export interface FailureCodes {
  error: number;
  usage: number;
}

/** The codes of commands other than `exec` and `run -- CMD`. */
export const CONVENTIONAL: FailureCodes = { error: 1, usage: 2 };
/** docker's codes, for `exec` and `run -- CMD`. */
export const DOCKER: FailureCodes = { error: 125, usage: 125 };
/** The command could not be run (docker's 126). */
export const CANNOT_RUN = 126;
/** The command was not found (docker's 127). */
export const NOT_FOUND = 127;

/**
 * One line for an error: the typed error's code and message, which names the field when there is
 * one (`[invalid_argument] cpu: "lots" is not a CPU quantity; accepted: …`).
 */
export function errorLine(err: unknown): string {
  if (err instanceof UsageError) return err.message;
  const e = ChalkError.from(err, Code.Unknown);
  const firstLine = e.message.split("\n")[0] ?? e.message;
  const field = e.field && !e.rawMessage.includes(e.field) ? ` (field: ${e.field})` : "";
  return `${firstLine}${field}`;
}
