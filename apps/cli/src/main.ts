#!/usr/bin/env node
/**
 * `chalk`: runs one command and exits with its code. Errors print one line on stderr, the typed
 * error's code and message (`chalk: [not_found] container "x" not found`). Exit codes: 0; 1 for an
 * error, 2 for a usage error (bad flags or arguments, or a value rejected as invalid_argument);
 * `exec` and `run -- CMD` exit with the command's code, and with docker's 125/126/127 for chalk's
 * own failures.
 */
import { ChalkError, Code } from "@chalk/core";
import { CommanderError } from "commander";
import { CONVENTIONAL, DOCKER, ExitCode, errorLine, type FailureCodes, UsageError } from "./errors.js";
import { buildProgram } from "./program.js";

/** Which exit codes chalk's own failures use for this command line. */
function failureCodes(args: readonly string[]): FailureCodes {
  const command = args.find((a) => !a.startsWith("-"));
  if (command === "exec") return DOCKER;
  if (command === "run" && args.includes("--")) return DOCKER;
  return CONVENTIONAL;
}

async function exit(code: number): Promise<never> {
  // Let piped output drain before leaving.
  await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
  process.exit(code);
}

async function main(): Promise<never> {
  const args = process.argv.slice(2);
  const codes = failureCodes(args);
  // A reader that went away (`chalk logs web | head`): end as a process killed by SIGPIPE would.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(128 + 13);
  });
  // A command whose work ended without settling (a stream that never closed) must not exit 0.
  process.once("beforeExit", () => {
    process.stderr.write("chalk: [internal] the command stopped without finishing\n");
    process.exit(codes.error);
  });
  try {
    await buildProgram().parseAsync(process.argv);
    return exit(0);
  } catch (err) {
    if (err instanceof ExitCode) return exit(err.code);
    if (err instanceof CommanderError) {
      // commander printed the message (or the help) already.
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.exitCode === 0) {
        return exit(0);
      }
      return exit(err.code === "commander.help" ? 0 : codes.usage);
    }
    process.stderr.write(`chalk: ${errorLine(err)}\n`);
    const usage =
      err instanceof UsageError || (err instanceof ChalkError && err.code === Code.InvalidArgument);
    return exit(usage ? codes.usage : codes.error);
  }
}

void main();
