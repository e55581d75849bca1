import { once } from "node:events";
import type { Command } from "commander";
import { intFlag, sdkFor, serverCommand } from "../command.js";
import { attachContainer } from "../containers.js";

/** `chalk logs`: the entrypoint's output. */
export function logsCommand(): Command {
  return serverCommand("logs", "Print a container's entrypoint output (stdout and stderr as written)", [
    "chalk logs web",
    "chalk logs -f --tail 20 web",
  ])
    .argument("<container>", "container name or id")
    .option("-f, --follow", "keep printing new output until the entrypoint ends")
    .option("--tail <lines>", "start with only the last LINES lines")
    .action(async (ref: string, opts: { follow?: boolean; tail?: string }, cmd: Command) => {
      const tailLines = opts.tail === undefined ? undefined : intFlag("--tail", opts.tail, 0, 0xffff_ffff);
      const c = await attachContainer(ref, await sdkFor(cmd));
      const base = tailLines === undefined ? {} : { tailLines };
      if (!opts.follow) {
        process.stdout.write(await c.logs(base));
        return;
      }
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once("SIGINT", stop);
      try {
        for await (const text of c.logs({ ...base, follow: true, signal: ac.signal })) {
          if (!process.stdout.write(text)) await once(process.stdout, "drain");
        }
      } catch (err) {
        if (!ac.signal.aborted) throw err;
      } finally {
        process.off("SIGINT", stop);
      }
    });
}
