import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { listContainers } from "@chalk/container";
import { ChalkError, Code } from "@chalk/core";
import type { Command } from "commander";
import { sdkOptions } from "../client.js";
import { outputOption, printJson, subcommand } from "../command.js";
import { checkContextName, configPath, readConfig, writeConfig } from "../config.js";
import { UsageError } from "../errors.js";
import { table } from "../format.js";
import { readSecret } from "../read-secret.js";
import { note, terminal } from "../terminal.js";

/** `chalk login`: checks a server and token, then saves them as a context and makes it current. */
export function loginCommand(): Command {
  return subcommand(
    "login",
    "Save a server, token, environment and CA as a named context (the token from stdin or a hidden prompt), and use it",
    [
      "chalk login 127.0.0.1:50051                    # prompts for the token",
      'echo "$TOKEN" | chalk login chalk.internal:443 --name prod --environment prod --ca ./ca.pem',
    ],
  )
    .argument("<server>", "host:port of the server")
    .option("--name <context>", "context name", "default")
    .option("--environment <name>", "environment to act in", "default")
    .option("--ca <file>", "PEM file of the CA of the server's TLS certificate")
    .option("--no-verify", "save without checking the token against the server")
    .action(
      async (server: string, opts: { name: string; environment: string; ca?: string; verify: boolean }) => {
        const name = checkContextName(opts.name);
        if (!/^[^\s/]+:\d{1,5}$/.test(server))
          throw new UsageError(`server: ${JSON.stringify(server)} is not host:port`);
        const ca = opts.ca === undefined ? undefined : resolve(opts.ca);
        if (ca !== undefined) {
          const pem = await readFile(ca, "utf8").catch((err: unknown) => {
            throw new ChalkError(Code.InvalidArgument, `--ca: cannot read ${ca}: ${(err as Error).message}`, {
              field: "ca",
            });
          });
          if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
            throw new ChalkError(Code.InvalidArgument, `--ca: ${ca} holds no PEM certificate`, {
              field: "ca",
            });
          }
        }
        const token = await readSecret(`token for ${server}`);
        if (opts.verify) {
          await listContainers({
            ...sdkOptions({ server, token, environment: opts.environment, ca, context: undefined }),
            limit: 1,
          });
        }
        const config = await readConfig();
        config.contexts[name] = { server, token, environment: opts.environment, ...(ca ? { ca } : {}) };
        config.currentContext = name;
        await writeConfig(config);
        note(
          `logged in to ${server} (environment ${opts.environment}) as context ${name}, saved in ${configPath()}`,
        );
      },
    );
}

/** `chalk context ls|use|rm`. */
export function contextCommand(): Command {
  const context = subcommand("context", "List, switch and remove saved contexts (chalk login adds them)", [
    "chalk context ls",
    "chalk context use prod",
  ]);
  context.addCommand(
    subcommand("ls", "List contexts (tokens are never shown)", [
      "chalk context ls",
      "chalk context ls -o json",
    ])
      .addOption(outputOption(["table", "json"]))
      .action(async (opts: { output: string }) => {
        const config = await readConfig();
        const entries = Object.entries(config.contexts).sort(([a], [b]) => a.localeCompare(b));
        if (opts.output === "json") {
          return printJson(
            entries.map(([name, c]) => ({
              name,
              current: name === config.currentContext,
              server: c.server,
              environment: c.environment ?? "default",
              ca: c.ca ?? null,
              hasToken: c.token !== undefined,
            })),
          );
        }
        const term = terminal();
        const rows = entries.map(([name, c]) => [
          name === config.currentContext ? "*" : "",
          name,
          c.server,
          c.environment ?? "default",
          c.ca ?? "",
        ]);
        process.stdout.write(
          table(
            ["CURRENT", "NAME", "SERVER", "ENVIRONMENT", "CA"].map((h) => term.out.bold(h)),
            rows,
          ),
        );
      }),
  );
  context.addCommand(
    subcommand("use", "Make a context the current one", ["chalk context use prod"])
      .argument("<name>", "context name")
      .action(async (name: string) => {
        const config = await readConfig();
        if (!config.contexts[name])
          throw new ChalkError(Code.NotFound, `context ${JSON.stringify(name)} not found`);
        config.currentContext = name;
        await writeConfig(config);
        note(`using context ${name}`);
      }),
  );
  context.addCommand(
    subcommand("rm", "Remove a context and its token", ["chalk context rm staging"])
      .argument("<name>", "context name")
      .action(async (name: string) => {
        const config = await readConfig();
        if (!config.contexts[name])
          throw new ChalkError(Code.NotFound, `context ${JSON.stringify(name)} not found`);
        delete config.contexts[name];
        if (config.currentContext === name) config.currentContext = undefined;
        await writeConfig(config);
        note(`removed context ${name}`);
      }),
  );
  return context;
}
