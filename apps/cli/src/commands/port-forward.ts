import type { Command } from "commander";
import { intFlag, sdkFor, serverCommand } from "../command.js";
import { runningContainer } from "../containers.js";
import { errorLine, UsageError } from "../errors.js";
import { note } from "../terminal.js";

/** One `LOCAL:REMOTE` mapping of `chalk port-forward` (local 0: any free port). */
export interface PortMapping {
  local: number;
  remote: number;
}

/**
 * Parses `[LOCAL]:REMOTE` or `REMOTE` (the same port locally), as `kubectl port-forward` does:
 * `8080:80`, `:80` (a free local port), `80`.
 */
export function parsePortMapping(text: string): PortMapping {
  const m = /^(?:(\d*):)?(\d+)$/.exec(text);
  if (!m) {
    throw new UsageError(`${JSON.stringify(text)} is not a port mapping (LOCAL:REMOTE, :REMOTE or PORT)`);
  }
  const port = (which: string, value: string) => {
    try {
      return intFlag(which, value, 1, 65535);
    } catch {
      throw new UsageError(`${JSON.stringify(text)}: ${which} port ${value} is not from 1 to 65535`);
    }
  };
  const remote = port("remote", m[2] as string);
  const localText = m[1];
  const local = localText === undefined ? remote : localText === "" ? 0 : port("local", localText);
  return { local, remote };
}

/** `chalk port-forward`: forwards local ports to a running container's ports until interrupted. */
export function portForwardCommand(): Command {
  return serverCommand(
    "port-forward",
    "Forward local ports to ports of a running container through the server, until Ctrl-C",
    [
      "chalk port-forward web 8080:80",
      "chalk port-forward web :8080",
      "chalk port-forward --address 0.0.0.0 web 5432",
    ],
  )
    .argument("<container>", "container name or id")
    .argument("<ports...>", "LOCAL:REMOTE, :REMOTE (a free local port) or PORT (the same both sides)")
    .option("--address <address>", "local address to listen on", "127.0.0.1")
    .action(async (ref: string, ports: string[], opts: { address: string }, cmd: Command) => {
      const mappings = ports.map(parsePortMapping);
      const sdk = await sdkFor(cmd);
      const c = await runningContainer(ref, sdk);
      const forwards = [];
      try {
        for (const { local, remote } of mappings) {
          const fwd = await c.forward(remote, {
            localPort: local,
            host: opts.address,
            onError: (err) => note(`chalk: port ${remote}: ${errorLine(err)}`),
          });
          forwards.push(fwd);
          process.stdout.write(`Forwarding from ${fwd.address} -> ${remote}\n`);
        }
        await new Promise<void>((resolve) => {
          process.once("SIGINT", resolve);
          process.once("SIGTERM", resolve);
        });
      } finally {
        await Promise.all(forwards.map((f) => f.close()));
      }
    });
}
