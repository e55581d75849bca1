import { ChalkError, Code, codeName } from "@chalk/core";
import type { CallContext } from "@chalk/rpc";
import { type Logger, pino } from "pino";

/**
 * Paths pino censors wherever they appear in a log object. Handlers never log request bodies; this is
 * the second line of defence for anything that carries a credential or a secret value.
 */
export const REDACT_PATHS = [
  "authorization",
  "token",
  "tokens",
  "value",
  "values",
  "secret.value",
  "*.authorization",
  "*.token",
  "*.tokens",
  "*.value",
  "*.values",
  "*.env",
  "config.tokens",
];

/** Creates the server's JSON logger (stdout). */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: "chalk-server" },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** The status code a call ended with: 0 (ok) or its gRPC code. */
export function callCode(error: unknown): number {
  if (error === undefined) return 0;
  return error instanceof ChalkError ? error.code : Code.Internal;
}

/**
 * Logs one finished call: request id, method, environment, duration, code, peer. Never the request or
 * response body. Failed calls carry the error's message (ChalkError messages never contain secret
 * values); unexpected errors are logged with their stack at error level.
 */
export function logCall(log: Logger, ctx: CallContext, error: unknown, durationMs: number): void {
  const code = callCode(error);
  const entry = {
    reqId: ctx.requestId,
    method: `${ctx.method.parent.typeName}/${ctx.method.name}`,
    env: ctx.environment,
    durationMs: Math.round(durationMs * 10) / 10,
    code: code === 0 ? "ok" : codeName(code as Code),
    peer: ctx.peer,
  };
  if (code === 0) log.info(entry, "call");
  else if (error instanceof ChalkError) log.info({ ...entry, error: error.message }, "call failed");
  else log.error({ ...entry, err: error }, "call failed unexpectedly");
}
