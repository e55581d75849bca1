import { invalidArgument } from "@chalk/core";
import type { ExecOptions } from "./types.js";

/**
 * Splits `exec("ls", "-la", { timeoutSecs: 5 })` style arguments into argv and options, and checks
 * that argv is a non-empty list of strings without NUL bytes.
 */
export function splitExecArgs(args: readonly unknown[]): { argv: string[]; options: ExecOptions } {
  const last = args.at(-1);
  const hasOptions = typeof last === "object" && last !== null && !Array.isArray(last);
  const argv = (hasOptions ? args.slice(0, -1) : args.slice()) as unknown[];
  validateArgv(argv);
  return { argv: argv as string[], options: hasOptions ? (last as ExecOptions) : {} };
}

/** Checks an argv: at least one element, all strings, no NUL bytes, the program not empty. */
export function validateArgv(argv: readonly unknown[], field = "argv"): asserts argv is string[] {
  if (argv.length === 0) throw invalidArgument(field, "empty command", "at least one string, the program");
  argv.forEach((a, i) => {
    if (typeof a !== "string") throw invalidArgument(`${field}[${i}]`, `expected a string, got ${typeof a}`);
    if (a.includes("\0")) throw invalidArgument(`${field}[${i}]`, "contains a NUL byte");
  });
  if (argv[0] === "") throw invalidArgument(`${field}[0]`, "the program name is empty");
}
