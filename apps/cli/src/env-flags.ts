/** `-e K=V` flags (docker's): plaintext environment variables; `-e K` copies K from chalk's own environment. */
import type { Command } from "commander";
import { UsageError } from "./errors.js";

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Adds `-e, --env K=V` (repeatable). */
export function envFlags(cmd: Command): Command {
  return cmd.option(
    "-e, --env <K=V>",
    "environment variable (repeatable; -e K copies K from this environment)",
    (v: string, prev: string[] = []) => [...prev, v],
  );
}

/** The variables of `-e` flags. */
export function parseEnvFlags(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    const name = eq < 0 ? v : v.slice(0, eq);
    if (!NAME.test(name)) {
      throw new UsageError(`-e: ${JSON.stringify(v)} is not K=V with K a variable name (letters, digits, _)`);
    }
    if (eq >= 0) out[name] = v.slice(eq + 1);
    else if (process.env[name] !== undefined) out[name] = process.env[name]!;
    else throw new UsageError(`-e ${name}: ${name} is not set in this environment`);
  }
  return out;
}
