import type { Command } from "commander";
import { runAttached } from "../attach.js";
import { sdkFor, serverCommand } from "../command.js";
import { runningContainer } from "../containers.js";
import { envFlags, parseEnvFlags } from "../env-flags.js";
import { ExitCode, UsageError } from "../errors.js";

/** `chalk exec`: runs a command in a running container, attached to this terminal. */
export function execCommand(): Command {
  return envFlags(
    serverCommand(
      "exec",
      "Run a command in a running container. Exit code: the command's; 125 when chalk or the server fails, 126 when the command cannot be run or the -w directory is missing or not a directory (as docker exec), 127 when it is not found",
      [
        "chalk exec web -- ls -la /app",
        "chalk exec -it web -- bash",
        "echo 'print(1+1)' | chalk exec -i web -- python3",
      ],
    ),
  )
    .argument("<container>", "container name or id")
    .argument("<command...>", "the command and its arguments (after --)")
    .option("-i, --interactive", "stream stdin to the command")
    .option("-t, --tty", "run the command on a terminal (raw mode, following window resizes)")
    .option("-w, --workdir <dir>", "working directory inside the container")
    .action(
      async (
        ref: string,
        argv: string[],
        opts: { interactive?: boolean; tty?: boolean; workdir?: string; env?: string[] },
        cmd: Command,
      ) => {
        if (argv.length === 0) throw new UsageError("exec: a command is required after the container");
        const env = parseEnvFlags(opts.env ?? []);
        const c = await runningContainer(ref, await sdkFor(cmd));
        const code = await runAttached(c, argv, {
          stdin: opts.interactive === true,
          tty: opts.tty === true,
          ...(Object.keys(env).length > 0 ? { env } : {}),
          ...(opts.workdir ? { workdir: opts.workdir } : {}),
        });
        throw new ExitCode(code);
      },
    );
}
