import { ChalkError, Code } from "@chalk/core";

/**
 * The message of the fatal error a runsc command logged, from its `--debug-log`
 * (`W… util.go:107] FATAL ERROR: <message>`), or undefined when it logged none. runsc also prints
 * it on its stderr, which for `runsc exec` is the process's own stderr, and which it may not even
 * manage to write (a runsc whose exec failed dies of SIGPIPE writing it): the log is where it is
 * reliably found.
 */
export function runscFatalError(debugLog: string): string | undefined {
  const marker = "FATAL ERROR: ";
  const line = debugLog
    .split("\n")
    .filter((l) => l.includes(marker))
    .at(-1);
  return line === undefined ? undefined : line.slice(line.indexOf(marker) + marker.length).trim();
}

/** What {@link execStartError} needs to name. */
export interface ExecStartFailure {
  /** The process's argv (argv[0] is named as the program). */
  argv: readonly string[];
  /** The working directory the process was to start in. */
  workdir: string;
  /** The PATH the program was looked up in. */
  path: string | undefined;
  /** The fatal error runsc logged ({@link runscFatalError}), if any. */
  runscMessage: string | undefined;
}

/**
 * Translates why `runsc exec` could not start a process into a ChalkError in the user's terms: a
 * missing working directory or program is `not_found`, a program that cannot be executed
 * `failed_precondition`, each naming the directory or program and the field. runsc's own words
 * (`executing processes for container: …`) never reach the message; an unrecognised failure is
 * `internal` with a generic message, runsc's text kept only as the error's cause.
 */
export function execStartError(f: ExecStartFailure): ChalkError {
  const program = f.argv[0] ?? "";
  const msg = f.runscMessage ?? "";
  const what = `exec ${JSON.stringify(program)}`;
  if (/failed to find initial working directory/.test(msg)) {
    const reason = /not a directory/.test(msg) ? "a parent of it is not a directory" : "it does not exist";
    return new ChalkError(
      Code.NotFound,
      `${what}: workdir ${JSON.stringify(f.workdir)}: ${reason} in the sandbox`,
      { field: "workdir" },
    );
  }
  if (/error finding executable/.test(msg)) {
    return new ChalkError(
      Code.NotFound,
      `${what}: program ${JSON.stringify(program)} not found in PATH${f.path ? ` (${f.path})` : ""}`,
      { field: "argv[0]" },
    );
  }
  const load = /failed to load [^:]*: (.*)$/.exec(msg)?.[1];
  if (load !== undefined) {
    if (/no such file or directory|not a directory/.test(load)) {
      return new ChalkError(Code.NotFound, `${what}: program ${JSON.stringify(program)} does not exist`, {
        field: "argv[0]",
      });
    }
    if (/permission denied/.test(load)) {
      return new ChalkError(
        Code.FailedPrecondition,
        `${what}: program ${JSON.stringify(program)} cannot be executed (permission denied: not an executable file, or a directory)`,
        { field: "argv[0]" },
      );
    }
    if (/exec format error|invalid argument/.test(load)) {
      return new ChalkError(
        Code.FailedPrecondition,
        `${what}: program ${JSON.stringify(program)} is not in an executable format this sandbox runs`,
        { field: "argv[0]" },
      );
    }
    if (/too many levels of symbolic links/.test(load)) {
      return new ChalkError(
        Code.FailedPrecondition,
        `${what}: program ${JSON.stringify(program)}: too many levels of symbolic links`,
        { field: "argv[0]" },
      );
    }
  }
  return new ChalkError(Code.Internal, `${what}: the sandbox could not start the process`, {
    cause: new Error(msg || "runsc exec failed without a message"),
  });
}
