/**
 * The one place where a resolved {@link Connection} becomes SDK connect options. Every SDK call of
 * the CLI takes its options from {@link sdkOptions}, so a change in how the SDK connects (TLS with
 * a CA, deadlines) touches this file only.
 */
import { readFileSync } from "node:fs";
import { ChalkError, Code } from "@chalk/core";
import type { Connection } from "./connection.js";

/** The connect options every SDK entry point accepts. */
export interface SdkConnectOptions {
  address: string;
  token?: string;
  environment: string;
  /** TLS with the connection's CA (PEM); absent, the SDK decides (TLS off loopback, or with CHALK_TLS_CA). */
  tls?: { ca: Uint8Array };
}

/**
 * SDK connect options for a connection. A CA file (`--ca`, or the context's) makes the SDK verify
 * the server's certificate against that CA; without one the SDK's defaults apply (`CHALK_TLS_CA`,
 * else TLS with the system's roots off loopback, plaintext on loopback).
 */
export function sdkOptions(conn: Connection): SdkConnectOptions {
  let tls: { ca: Uint8Array } | undefined;
  if (conn.ca !== undefined) {
    try {
      tls = { ca: readFileSync(conn.ca) };
    } catch (err) {
      throw new ChalkError(Code.InvalidArgument, `--ca: cannot read ${conn.ca}: ${(err as Error).message}`, {
        field: "ca",
        cause: err,
      });
    }
  }
  return {
    address: conn.server,
    environment: conn.environment,
    ...(conn.token === undefined ? {} : { token: conn.token }),
    ...(tls ? { tls } : {}),
  };
}
