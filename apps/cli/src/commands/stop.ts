import type { Command } from "commander";
import { forEachName, sdkFor, serverCommand } from "../command.js";
import { attachContainer } from "../containers.js";
import { UsageError } from "../errors.js";
import { parseDuration } from "../format.js";

/** `chalk stop`: stops containers (SIGTERM, grace period, SIGKILL). */
export function stopCommand(): Command {
  return serverCommand("stop", "Stop containers: SIGTERM, then SIGKILL after the grace period", [
    "chalk stop hello-container",
    "chalk stop --grace 30s web worker-1 worker-2",
  ])
    .argument("<container...>", "container names or ids")
    .option("--grace <duration>", "time between SIGTERM and SIGKILL (30s, 1m, 0)", "0")
    .action(async (refs: string[], opts: { grace: string }, cmd: Command) => {
      const grace = parseDuration(opts.grace);
      if (grace === undefined || grace > 3600) {
        throw new UsageError(
          `--grace: ${JSON.stringify(opts.grace)} is not a duration up to 1h (30s, 1m, 0)`,
        );
      }
      const sdk = await sdkFor(cmd);
      await forEachName(refs, async (ref) => {
        const c = await attachContainer(ref, sdk);
        await c.stop({ gracePeriodSeconds: grace });
        return c.name;
      });
    });
}
