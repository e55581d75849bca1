import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { checkServerIdentity } from "node:tls";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import * as grpc from "@grpc/grpc-js";
import { hostOf, isLoopback } from "./address.js";
import {
  AUTHORIZATION_HEADER,
  DEFAULT_ADDRESS,
  DEFAULT_ENVIRONMENT,
  ENVIRONMENT_HEADER,
  MAX_MESSAGE_BYTES,
} from "./headers.js";

/** How a client verifies the server's TLS certificate. */
export interface TransportTlsOptions {
  /**
   * The certificate authority (PEM) that signed the server's certificate, for a private CA or a
   * self-signed certificate. Default: the file named by `CHALK_TLS_CA`, else the system's roots.
   */
  ca?: string | Uint8Array | undefined;
  /**
   * The name the certificate must carry when it differs from the address's host (connecting by IP
   * to a certificate issued for a DNS name). Default: the address's host.
   */
  serverName?: string | undefined;
}

/** Options for {@link createTransport}. Each falls back to an environment variable. */
export interface TransportCreateOptions {
  /** `host:port` of the server. Default: `CHALK_API_SERVER`, else `127.0.0.1:50051`. */
  address?: string | undefined;
  /** Bearer token. Default: `CHALK_TOKEN`. */
  token?: string | undefined;
  /** Environment to act in. Default: `CHALK_ENVIRONMENT`, else `"default"`. */
  environment?: string | undefined;
  /**
   * TLS: `true` (verify against the system's roots, or the CA file in `CHALK_TLS_CA`), a CA and
   * server name to verify with, or `false` for plaintext. Default: TLS when `CHALK_TLS_CA` is set or
   * the address is not loopback; plaintext on loopback. A token is never sent in plaintext to a
   * non-loopback address: that combination is refused with invalid_argument.
   */
  tls?: boolean | TransportTlsOptions | undefined;
}

/** A connection to a Chalk server, shared by every client made from it. */
export interface Transport {
  /** The server address, `host:port`. */
  readonly address: string;
  /** The environment calls act in. */
  readonly environment: string;
  /** Whether calls go over TLS. */
  readonly tls: boolean;
  /** Closes the connection; calls in flight fail with unavailable or canceled. */
  close(): void;
}

/** The TLS server name sent to a server addressed by IP (the certificate is checked for the IP). */
const IP_TARGET_SERVER_NAME = "chalk-ip-target.invalid";

/** What the client adapter needs of a transport; never part of the public types. */
export interface TransportInternals {
  channel: grpc.Client;
  metadata(): grpc.Metadata;
}

/** Registry key of a transport's internals, shared by every copy of this package. */
const internalsKey = Symbol.for("@chalk/rpc.transport");

/** The channel and headers of a transport made by {@link createTransport}. */
export function internalsOf(transport: Transport): TransportInternals {
  const internals = (transport as { [internalsKey]?: TransportInternals })[internalsKey];
  if (!internals) {
    throw new ChalkError(Code.InvalidArgument, "transport: not a transport made by createTransport", {
      field: "transport",
    });
  }
  return internals;
}

/** The CA as PEM bytes, refused before any connection unless it parses as an X.509 certificate. */
function pemOf(value: string | Uint8Array, what: string): Buffer {
  const pem = typeof value === "string" ? Buffer.from(value, "utf8") : Buffer.from(value);
  const accepted = "PEM text with -----BEGIN CERTIFICATE-----";
  if (!pem.includes("-----BEGIN CERTIFICATE-----"))
    throw invalidArgument(what, "is not a PEM certificate", accepted);
  try {
    new X509Certificate(pem);
  } catch {
    throw invalidArgument(what, "holds a certificate that does not parse", accepted);
  }
  return pem;
}

function caFromEnvironment(): Buffer | undefined {
  const path = process.env.CHALK_TLS_CA;
  if (!path) return undefined;
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    throw new ChalkError(
      Code.InvalidArgument,
      `CHALK_TLS_CA: cannot read ${path}: ${(err as Error).message}`,
      {
        field: "tls.ca",
        cause: err,
      },
    );
  }
  return pemOf(pem, "CHALK_TLS_CA");
}

/** The resolved TLS settings: undefined for plaintext. */
function tlsOf(
  option: TransportCreateOptions["tls"],
  address: string,
): { ca: Buffer | undefined; serverName: string | undefined } | undefined {
  if (option === false) return undefined;
  if (option === undefined && !process.env.CHALK_TLS_CA && isLoopback(address)) return undefined;
  const explicit = typeof option === "object" ? option : {};
  const ca = explicit.ca !== undefined ? pemOf(explicit.ca, "tls.ca") : caFromEnvironment();
  return { ca, serverName: explicit.serverName };
}

/**
 * Opens a connection to a Chalk server. Explicit options override `CHALK_API_SERVER`, `CHALK_TOKEN`,
 * `CHALK_ENVIRONMENT` and `CHALK_TLS_CA`. The connection is made lazily, on the first call; a server
 * that cannot be reached, or whose certificate does not verify, fails that call with unavailable.
 *
 * @example
 * ```ts
 * const transport = createTransport({ address: "chalk.internal:50051", tls: { ca: readFileSync("ca.pem") } });
 * const sandboxes = createClient(SandboxService, transport);
 * ```
 */
export function createTransport(options: TransportCreateOptions = {}): Transport {
  const address = options.address ?? process.env.CHALK_API_SERVER ?? DEFAULT_ADDRESS;
  const token = options.token ?? process.env.CHALK_TOKEN;
  const environment = options.environment ?? process.env.CHALK_ENVIRONMENT ?? DEFAULT_ENVIRONMENT;
  const tls = tlsOf(options.tls, address);
  if (!tls && token && !isLoopback(address)) {
    throw invalidArgument(
      "tls",
      `plaintext to ${address}, which is not a loopback address, would send the token in the clear`,
      "TLS (the default off loopback; CHALK_TLS_CA or tls.ca for a private CA)",
    );
  }
  const channelOptions: grpc.ChannelOptions = {
    "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_permit_without_calls": 0,
    ...(tls?.serverName ? { "grpc.ssl_target_name_override": tls.serverName } : {}),
  };
  let verify: grpc.VerifyOptions | undefined;
  const host = hostOf(address);
  if (tls && !tls.serverName && isIP(host) !== 0) {
    // grpc-js sends the target's host as TLS's server name (SNI), and Node warns (DEP0123) when that
    // is an IP address, which RFC 6066 forbids. For an IP target, send a name that is no address and
    // verify the certificate for the IP itself, exactly as the default check would.
    channelOptions["grpc.ssl_target_name_override"] = IP_TARGET_SERVER_NAME;
    verify = { checkServerIdentity: (_name, cert) => checkServerIdentity(host, cert) };
  }
  const credentials = tls
    ? grpc.credentials.createSsl(tls.ca ?? null, null, null, verify)
    : grpc.credentials.createInsecure();
  const channel = new grpc.Client(address, credentials, channelOptions);
  const internals: TransportInternals = {
    channel,
    metadata() {
      const md = new grpc.Metadata();
      md.set(ENVIRONMENT_HEADER, environment);
      if (token) md.set(AUTHORIZATION_HEADER, `Bearer ${token}`);
      return md;
    },
  };
  const transport: Transport = {
    address,
    environment,
    tls: tls !== undefined,
    close() {
      channel.close();
    },
  };
  Object.defineProperty(transport, internalsKey, { value: internals });
  return transport;
}

const shared = new Map<string, Transport>();

/**
 * The transport for the given options over the current environment variables, created once per
 * distinct (address, token, environment, TLS settings) and reused: SDK objects call this when given no
 * transport.
 */
export function defaultTransport(options: TransportCreateOptions = {}): Transport {
  const tls = options.tls;
  const key = JSON.stringify([
    options.address ?? process.env.CHALK_API_SERVER,
    options.token ?? process.env.CHALK_TOKEN,
    options.environment ?? process.env.CHALK_ENVIRONMENT,
    typeof tls === "object" ? [tls.ca ? Buffer.from(tls.ca).toString("base64") : null, tls.serverName] : tls,
    process.env.CHALK_TLS_CA,
  ]);
  let t = shared.get(key);
  if (!t) {
    t = createTransport(options);
    shared.set(key, t);
  }
  return t;
}
