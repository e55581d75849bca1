#!/usr/bin/env node
/**
 * `chalk-server`: parses flags and environment, starts the server, and stops serving on SIGTERM or
 * SIGINT (containers keep running). A bad configuration exits with status 2 and a message naming it.
 */
import type { ComputeBackend } from "./backend/compute-backend.js";
import { ConfigError, parseConfig, type ServerConfig, USAGE } from "./config.js";
import { kubernetesBackend } from "./kubernetes/kubernetes-backend.js";
import { localBackend } from "./local/local-backend.js";
import { createLogger } from "./logging.js";
import { guardProcess } from "./process-guard.js";
import { startServer } from "./server.js";

/** The backend the configuration names. */
function chooseBackend(
  config: ServerConfig,
  log: Parameters<typeof localBackend>[1],
): Promise<ComputeBackend> {
  return config.kubernetes ? kubernetesBackend(config, config.kubernetes, log) : localBackend(config, log);
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseConfig>;
  try {
    parsed = parseConfig(process.argv.slice(2));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`chalk-server: ${err.rawMessage}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (parsed.help) {
    process.stdout.write(USAGE);
    return;
  }
  const log = createLogger(parsed.config.logLevel);
  guardProcess(log);
  // Signals are handled from the start: one that comes while the server is still starting (it may
  // already have said "listening") stops it as soon as it has started, instead of killing the
  // process before it could stop cleanly.
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  let stopRequested = false;
  let closing = false;
  const shutdown = () => {
    stopRequested = true;
    if (closing || !server) return;
    closing = true;
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error(
          { error: err instanceof Error ? err.message : String(err) },
          "chalk-server did not stop cleanly",
        );
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  try {
    server = await startServer(parsed.config, { backend: chooseBackend, log });
  } catch (err) {
    // The backend checks what it alone can (an operator image that is not a root filesystem).
    if (err instanceof ConfigError) {
      process.stderr.write(`chalk-server: ${err.rawMessage}\n`);
      process.exit(2);
    }
    throw err;
  }
  // For code preloaded into this process (`--import`, as the tests' planted faults): the server is up.
  (process as NodeJS.EventEmitter).emit("chalk-server:started");
  if (stopRequested) shutdown();
}

main().catch((err: unknown) => {
  process.stderr.write(`chalk-server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
