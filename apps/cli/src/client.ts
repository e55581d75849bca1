/**
 * The one place where a resolved {@link Connection} becomes SDK connect options. Every SDK call of
 * the CLI takes its options from {@link sdkOptions}, so a change in how the SDK connects (TLS with
 * a CA, deadlines) touches this file only.
 */
import { ChalkError, Code } from "@chalk/core";
import type { Connection } from "./connection.js";

/** The connect options every SDK entry point accepts. */
export interface SdkConnectOptions {
  address: string;
  token?: string;
  environment: string;
}

/**
 * SDK connect options for a connection. A CA file is kept in contexts already, but this SDK cannot
 * use one yet (it speaks plaintext or TLS with the system's roots): a connection that names a CA
 * fails here instead of silently dropping TLS.
 */
export function sdkOptions(conn: Connection): SdkConnectOptions {
  if (conn.ca !== undefined) {
    throw new ChalkError(
      Code.Unimplemented,
      `TLS with a CA file (${conn.ca}) is not supported by this version of the SDK yet; remove --ca or the context's CA to connect without TLS`,
    );
  }
  return {
    address: conn.server,
    environment: conn.environment,
    ...(conn.token === undefined ? {} : { token: conn.token }),
  };
}
