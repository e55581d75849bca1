/** Helpers every command uses: examples in --help, output formats, and the SDK options. */
import { Command, Option } from "commander";
import { type SdkConnectOptions, sdkOptions } from "./client.js";
import { connectionOptions, resolveConnection } from "./connection.js";
import { ExitCode, errorLine, UsageError } from "./errors.js";
import { note } from "./terminal.js";

/** A subcommand with a description and examples (shown under "Examples:" in its --help). */
export function subcommand(name: string, description: string, examples: readonly string[]): Command {
  return new Command(name)
    .description(description)
    .summary(description.split(/[:.] /)[0] ?? description)
    .addHelpText("after", `\nExamples:\n${examples.map((e) => `  $ ${e}`).join("\n")}\n`);
}

/** A subcommand that talks to the server: the connection flags added. */
export function serverCommand(name: string, description: string, examples: readonly string[]): Command {
  return connectionOptions(subcommand(name, description, examples));
}

/** The SDK options of a command, from its connection flags (flags > env > context). */
export async function sdkFor(cmd: Command): Promise<SdkConnectOptions> {
  return sdkOptions(await resolveConnection(cmd.opts()));
}

/** `-o, --output FORMAT` with the given choices, the first the default. */
export function outputOption(choices: readonly string[]): Option {
  return new Option("-o, --output <format>", "output format").choices([...choices]).default(choices[0]);
}

/** Writes a value as stable, indented JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Parses a positive integer flag, or throws a usage error naming it. */
export function intFlag(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag}: ${JSON.stringify(value)} is not an integer from ${min} to ${max}`);
  }
  return n;
}

/**
 * Acts on each name in turn (`stop a b`, `volume rm a b`): prints what `act` returns (the name it
 * acted on) on stdout, a one-line error on stderr for each failure, and exits 1 at the end when any
 * failed, after trying them all.
 */
export async function forEachName(
  names: readonly string[],
  act: (name: string) => Promise<string>,
): Promise<void> {
  let failed = 0;
  for (const name of names) {
    try {
      process.stdout.write(`${await act(name)}\n`);
    } catch (err) {
      failed++;
      note(`chalk: ${name}: ${errorLine(err)}`);
    }
  }
  if (failed > 0) throw new ExitCode(1);
}
