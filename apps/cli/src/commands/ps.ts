import { listContainers } from "@chalk/container";
import type { Command } from "commander";
import { outputOption, printJson, sdkFor, serverCommand } from "../command.js";
import { formatAge, formatBytes, table } from "../format.js";
import { containerJson } from "../json.js";
import { type Terminal, terminal } from "../terminal.js";

const ACTIVE = new Set(["Pending", "Running", "Unknown"]);

function statusCell(term: Terminal, status: string, exitCode: number | undefined): string {
  const text = exitCode !== undefined && status !== "Running" ? `${status} (${exitCode})` : status;
  const { green, yellow, red, dim } = term.out;
  if (status === "Running") return green(text);
  if (status === "Pending" || status === "Unknown") return yellow(text);
  if (status === "Failed") return red(text);
  return dim(text);
}

/** `chalk ps`: the environment's containers. */
export function psCommand(): Command {
  return serverCommand("ps", "List containers (running ones; -a for all)", [
    "chalk ps",
    "chalk ps -a -o wide",
    "chalk ps -o json | jq -r '.[].name'",
  ])
    .option("-a, --all", "include stopped, failed and finished containers")
    .addOption(outputOption(["table", "wide", "json"]))
    .action(async (opts: { all?: boolean; output: string }, cmd: Command) => {
      const records = (await listContainers(await sdkFor(cmd))).filter(
        (c) => opts.all || ACTIVE.has(c.status),
      );
      if (opts.output === "json") return printJson(records.map(containerJson));
      const term = terminal();
      const wide = opts.output === "wide";
      const header = ["NAME", "ID", "STATUS", "CREATED", "ADDRESS", "IMAGE"];
      if (wide) header.push("CPU", "MEMORY", "ENTRYPOINT", "MESSAGE");
      const rows = records.map((c) => {
        const row = [
          c.name,
          c.id.slice(0, 12),
          statusCell(term, c.status, c.exitCode),
          formatAge(c.createdAt),
          c.address ?? "",
          wide ? c.imageUri : shortImage(c.imageUri),
        ];
        if (wide) {
          row.push(
            `${c.resources.cpuMillis}m`,
            formatBytes(c.resources.memoryBytes),
            c.entrypoint.join(" "),
            c.statusMessage,
          );
        }
        return row;
      });
      process.stdout.write(
        table(
          header.map((h) => term.out.bold(h)),
          rows,
        ),
      );
    });
}

/** `local/chalk/images@sha256:0123456789ab…` → `local/chalk/images@sha256:0123456789ab`. */
function shortImage(uri: string): string {
  const at = uri.indexOf("@sha256:");
  return at < 0 ? uri : uri.slice(0, at + 8 + 12);
}
