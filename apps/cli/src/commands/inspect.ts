import type { Command } from "commander";
import { printJson, sdkFor, serverCommand } from "../command.js";
import { containerRecord } from "../containers.js";
import { containerJson } from "../json.js";

/** `chalk inspect`: a container's record as JSON. */
export function inspectCommand(): Command {
  return serverCommand("inspect", "Show everything the server records about a container, as JSON", [
    "chalk inspect hello-container",
    "chalk inspect hello-container | jq -r .status",
  ])
    .argument("<container>", "container name or id")
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      printJson(containerJson(await containerRecord(ref, await sdkFor(cmd))));
    });
}
