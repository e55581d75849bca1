import { isIP } from "node:net";

/** The host of a `host:port` address, without IPv6 brackets: `127.0.0.1`, `::1`, `chalk.example`. */
export function hostOf(address: string): string {
  const sep = address.lastIndexOf(":");
  const host = sep < 0 ? address : address.slice(0, sep);
  return host.replace(/^\[|\]$/g, "");
}

/**
 * True when the host of `address` (`host:port`) is a loopback address: `localhost`, `127.0.0.0/8`
 * or `::1`. Only such addresses may carry plaintext gRPC: elsewhere a bearer token would cross the
 * network in the clear.
 */
export function isLoopback(address: string): boolean {
  const host = hostOf(address).toLowerCase();
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  if (isIP(host) === 6) return host === "::1" || host === "0:0:0:0:0:0:0:1";
  return false;
}
