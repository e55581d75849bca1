import type { Logger } from "pino";

/** The message of the fatal log line for a rejection that nothing handled. */
export const UNHANDLED_REJECTION =
  "unhandled rejection (a server bug): a promise failed and nothing handled it";
/** The message of the fatal log line for an exception that nothing caught. */
export const UNCAUGHT_EXCEPTION = "uncaught exception (a server bug): stopping the server";

/**
 * Records every `unhandledRejection` and `uncaughtException` of the server process as a fatal log
 * line (pino level 60), which test fixtures look for and fail on.
 *
 * - An unhandled rejection is logged and the server keeps serving: Node's default (crash) would end
 *   every call in flight for a failure that touched one of them, and leaves no record in the log.
 * - An uncaught exception is logged and the process exits with status 70 (EX_SOFTWARE): its state
 *   may be broken. Containers keep running and a restarted server adopts them.
 */
export function guardProcess(log: Logger): void {
  process.on("unhandledRejection", (reason) => {
    log.fatal({ err: reason }, UNHANDLED_REJECTION);
  });
  process.on("uncaughtException", (err) => {
    log.fatal({ err }, UNCAUGHT_EXCEPTION);
    log.flush();
    process.exit(70);
  });
}
