import { createHash, timingSafeEqual } from "node:crypto";
import { ChalkError, Code } from "@chalk/core";
import { AUTHORIZATION_HEADER, bearerToken, type CallContext, type ServerInterceptor } from "@chalk/rpc";

const digest = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest();

/**
 * An interceptor that admits a call only with `authorization: Bearer <token>` for one of `tokens`.
 * Tokens are compared as SHA-256 digests with a constant-time comparison, so neither the content
 * nor the length of a token leaks through timing. Every configured token is checked on every call.
 */
export function requireToken(tokens: readonly string[]): ServerInterceptor {
  const accepted = tokens.map(digest);
  return (ctx: CallContext) => {
    const presented = bearerToken(ctx.metadata(AUTHORIZATION_HEADER));
    if (presented === undefined) {
      throw new ChalkError(
        Code.Unauthenticated,
        "missing bearer token (header authorization: Bearer <token>)",
      );
    }
    const d = digest(presented);
    let ok = false;
    for (const a of accepted) ok = timingSafeEqual(a, d) || ok;
    if (!ok) throw new ChalkError(Code.Unauthenticated, "invalid bearer token");
  };
}

/** The form of an environment name. */
export const ENVIRONMENT_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/**
 * An interceptor that rejects calls whose environment header is not a valid environment name, so
 * every object a handler touches is scoped to one well-formed environment.
 */
export const requireValidEnvironment: ServerInterceptor = (ctx) => {
  if (!ENVIRONMENT_NAME_PATTERN.test(ctx.environment)) {
    throw new ChalkError(
      Code.InvalidArgument,
      `x-chalk-environment: ${JSON.stringify(ctx.environment.slice(0, 80))} is not an environment name; accepted: 1-63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit`,
      { field: "environment" },
    );
  }
};
