/**
 * Which server, token, environment and CA a command uses. Flags override environment variables
 * (`CHALK_API_SERVER`, `CHALK_TOKEN`, `CHALK_ENVIRONMENT`), which override the current context (or
 * the one `--context` names). A context's token is sent only to that context's server.
 */
import type { Command } from "commander";
import { type Config, readConfig } from "./config.js";
import { UsageError } from "./errors.js";

/** Where a command connects. */
export interface Connection {
  /** `host:port`. */
  server: string;
  /** Bearer token, if any. */
  token: string | undefined;
  /** Environment to act in. */
  environment: string;
  /** CA file for TLS, if any. */
  ca: string | undefined;
  /** The context used, if any. */
  context: string | undefined;
}

/** The SDK's defaults when nothing else says. */
const DEFAULT_SERVER = "127.0.0.1:50051";
const DEFAULT_ENVIRONMENT = "default";

/** Connection flags, added to every command that talks to the server. */
export function connectionOptions(cmd: Command): Command {
  return cmd
    .option("--server <host:port>", "server address (env CHALK_API_SERVER)")
    .option("--environment <name>", "environment to act in (env CHALK_ENVIRONMENT)")
    .option("--context <name>", "context to use instead of the current one")
    .option("--ca <file>", "PEM file of the CA of the server's TLS certificate");
}

/** The connection flags of a command. */
export interface ConnectionFlags {
  server?: string;
  environment?: string;
  context?: string;
  ca?: string;
}

/** Resolves the connection of a command from its flags, the environment and the config file. */
export async function resolveConnection(flags: ConnectionFlags): Promise<Connection> {
  return chooseConnection(flags, process.env, await readConfig());
}

/** The connection that flags, environment variables and the config file give, in that order. */
export function chooseConnection(
  flags: ConnectionFlags,
  environment: Readonly<Record<string, string | undefined>>,
  config: Config,
): Connection {
  const name = flags.context ?? config.currentContext;
  const ctx = name === undefined ? undefined : config.contexts[name];
  if (flags.context !== undefined && !ctx) {
    throw new UsageError(`context ${JSON.stringify(flags.context)} does not exist (chalk context ls)`);
  }
  const env = (k: string) => (environment[k] === "" ? undefined : environment[k]);
  const server = flags.server ?? env("CHALK_API_SERVER") ?? ctx?.server ?? DEFAULT_SERVER;
  const token = env("CHALK_TOKEN") ?? (ctx && ctx.server === server ? ctx.token : undefined);
  return {
    server,
    token,
    environment: flags.environment ?? env("CHALK_ENVIRONMENT") ?? ctx?.environment ?? DEFAULT_ENVIRONMENT,
    ca: flags.ca ?? (ctx && ctx.server === server ? ctx.ca : undefined),
    context: ctx ? name : undefined,
  };
}
