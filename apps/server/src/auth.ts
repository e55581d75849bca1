import { timingSafeEqual } from "node:crypto";
import { ChalkError, Code } from "@chalk/core";
import { AUTHORIZATION_HEADER, bearerToken, type CallContext } from "@chalk/rpc";
import { ENVIRONMENT_NAME_PATTERN, type TokenGrant, tokenDigest } from "./tokens.js";

export { ENVIRONMENT_NAME_PATTERN } from "./tokens.js";

/**
 * An interceptor that rejects calls whose environment header is not a valid environment name, so
 * every object a handler touches is scoped to one well-formed environment.
 */
export function requireValidEnvironment(ctx: CallContext): void {
  if (!ENVIRONMENT_NAME_PATTERN.test(ctx.environment)) {
    throw new ChalkError(
      Code.InvalidArgument,
      `x-chalk-environment: ${JSON.stringify(ctx.environment.slice(0, 80))} is not an environment name; accepted: 1-63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit`,
      { field: "environment" },
    );
  }
}

/**
 * An interceptor that admits a call only with `authorization: Bearer <token>` for one of `grants`,
 * acting in an environment that token may use:
 * - no token, or one that matches no grant: unauthenticated;
 * - a malformed environment name: invalid_argument;
 * - an environment the token is not granted: permission_denied (the message does not list the ones
 *   it is granted).
 *
 * Tokens are compared as SHA-256 digests with a constant-time comparison against every grant, so
 * neither the content nor the length of a token leaks through timing.
 */
export function requireToken(grants: readonly TokenGrant[]): (ctx: CallContext) => void {
  return (ctx: CallContext) => {
    const presented = bearerToken(ctx.metadata(AUTHORIZATION_HEADER));
    if (presented === undefined) {
      throw new ChalkError(
        Code.Unauthenticated,
        "missing bearer token (header authorization: Bearer <token>)",
      );
    }
    const d = tokenDigest(presented);
    let match: TokenGrant | undefined;
    for (const g of grants) {
      if (timingSafeEqual(g.sha256, d)) match ??= g;
    }
    if (!match) throw new ChalkError(Code.Unauthenticated, "invalid bearer token");
    requireValidEnvironment(ctx);
    if (match.environments !== "*" && !match.environments.includes(ctx.environment)) {
      throw new ChalkError(
        Code.PermissionDenied,
        `this token may not act in environment ${JSON.stringify(ctx.environment)}`,
        { field: "environment" },
      );
    }
  };
}
