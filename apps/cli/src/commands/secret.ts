import { Secrets } from "@chalk/secrets";
import type { Command } from "commander";
import { forEachName, outputOption, printJson, sdkFor, serverCommand, subcommand } from "../command.js";
import { formatAge, table } from "../format.js";
import { secretJson } from "../json.js";
import { readSecret } from "../read-secret.js";
import { note, terminal } from "../terminal.js";

/** `chalk secret …`: the environment's managed secrets (values are write-only). */
export function secretCommand(): Command {
  const secret = subcommand("secret", "Manage the environment's secrets (values are write-only)", [
    "chalk secret set OPENAI_API_KEY",
    "chalk secret ls",
  ]);
  secret.addCommand(
    serverCommand(
      "set",
      "Create or replace a secret; the value comes from stdin or a hidden prompt, never argv",
      [
        "chalk secret set OPENAI_API_KEY            # prompts, echoes nothing",
        "pass show openai | chalk secret set OPENAI_API_KEY",
      ],
    )
      .argument("<name>", "secret name (an environment variable name)")
      .action(async (name: string, _o: unknown, cmd: Command) => {
        const sdk = await sdkFor(cmd);
        const value = await readSecret(`value of ${name}`);
        await Secrets.set(name, value, sdk);
        note(`secret ${name} set`);
      }),
  );
  secret.addCommand(
    serverCommand("ls", "List secrets (names and times, never values)", [
      "chalk secret ls",
      "chalk secret ls -o json",
    ])
      .addOption(outputOption(["table", "json"]))
      .action(async (opts: { output: string }, cmd: Command) => {
        const list = await Secrets.list(await sdkFor(cmd));
        if (opts.output === "json") return printJson(list.map(secretJson));
        const term = terminal();
        const rows = list.map((s) => [s.name, formatAge(s.createdAt), formatAge(s.updatedAt)]);
        process.stdout.write(
          table(
            ["NAME", "CREATED", "UPDATED"].map((h) => term.out.bold(h)),
            rows,
          ),
        );
      }),
  );
  secret.addCommand(
    serverCommand("rm", "Delete secrets", ["chalk secret rm OPENAI_API_KEY"])
      .argument("<name...>", "secret names")
      .action(async (names: string[], _o: unknown, cmd: Command) => {
        const sdk = await sdkFor(cmd);
        await forEachName(names, async (name) => {
          await Secrets.delete(name, sdk);
          return name;
        });
      }),
  );
  return secret;
}
