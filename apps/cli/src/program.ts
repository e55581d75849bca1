/** The `chalk` command tree. */
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { completionCommand } from "./commands/completion.js";
import { contextCommand, loginCommand } from "./commands/context.js";
import { cpCommand } from "./commands/cp.js";
import { execCommand } from "./commands/exec.js";
import { imageCommand } from "./commands/image.js";
import { inspectCommand } from "./commands/inspect.js";
import { logsCommand } from "./commands/logs.js";
import { portForwardCommand } from "./commands/port-forward.js";
import { psCommand } from "./commands/ps.js";
import { runCommand } from "./commands/run.js";
import { secretCommand } from "./commands/secret.js";
import { stopCommand } from "./commands/stop.js";
import { volumeCommand } from "./commands/volume.js";

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};

/** Builds the program; every command throws instead of exiting (main.ts picks the exit code). */
export function buildProgram(): Command {
  const program = new Command("chalk")
    .description("The Chalk compute platform from a terminal: containers, volumes, secrets and images")
    .version(version, "--version")
    .enablePositionalOptions()
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText(
      "after",
      `
Connection: --server, --environment, --context and --ca on every command, over the environment
variables CHALK_API_SERVER, CHALK_TOKEN and CHALK_ENVIRONMENT, over the current context (chalk login).

Examples:
  $ chalk login 127.0.0.1:50051
  $ chalk run --name hello --image-file image.ts --detach
  $ chalk exec -it hello -- bash
  $ chalk ps -a
`,
    );
  for (const cmd of [
    runCommand(),
    execCommand(),
    logsCommand(),
    psCommand(),
    inspectCommand(),
    stopCommand(),
    portForwardCommand(),
    cpCommand(),
    volumeCommand(),
    secretCommand(),
    imageCommand(),
    loginCommand(),
    contextCommand(),
    completionCommand(() => program),
  ]) {
    program.addCommand(cmd);
  }
  const configure = (cmd: Command) => {
    cmd.exitOverride().configureOutput({
      outputError: (str, write) => write(`chalk: ${str.replace(/^error: /, "")}`),
    });
    cmd.showHelpAfterError("(run with --help for usage)");
    for (const c of cmd.commands) configure(c);
  };
  configure(program);
  return program;
}
