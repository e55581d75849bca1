/**
 * `@chalk/rpc/testing`: helpers for tests of TLS servers and clients. Not for production use.
 *
 * @packageDocumentation
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A self-signed certificate and its key, PEM encoded, with the files that hold them. */
export interface TestCertificate {
  /** The certificate (PEM); also the CA that verifies it. */
  cert: string;
  /** Its private key (PEM). */
  key: string;
  /** A file holding `cert`, for `--tls-cert` and `CHALK_TLS_CA`. */
  certFile: string;
  /** A file holding `key` (mode 0600), for `--tls-key`. */
  keyFile: string;
  /** Removes the files. */
  remove(): void;
}

/**
 * Makes a self-signed ECDSA P-256 certificate with openssl, valid for two days, for the names that
 * reach this machine's loopback: `localhost`, `127.0.0.1` and `::1` (plus `extraNames`, DNS names;
 * or only the DNS names `onlyNames`).
 * The files go to `dir` (default: a new temporary directory, which `remove()` deletes).
 */
export function createTestCertificate(
  options: { extraNames?: readonly string[]; onlyNames?: readonly string[]; dir?: string } = {},
): TestCertificate {
  const extraNames = options.extraNames ?? [];
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "chalk-tls-"));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  const names = options.onlyNames
    ? options.onlyNames.map((n) => `DNS:${n}`)
    : ["DNS:localhost", "IP:127.0.0.1", "IP:::1", ...extraNames.map((n) => `DNS:${n}`)];
  // biome-ignore format: one openssl argument per line reads better than a packed array.
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", "/CN=chalk test server",
    "-addext", `subjectAltName=${names.join(",")}`,
  ], { stdio: ["ignore", "ignore", "pipe"] });
  chmodSync(keyFile, 0o600);
  return {
    cert: readFileSync(certFile, "utf8"),
    key: readFileSync(keyFile, "utf8"),
    certFile,
    keyFile,
    remove: () => {
      if (options.dir) {
        rmSync(certFile, { force: true });
        rmSync(keyFile, { force: true });
      } else rmSync(dir, { recursive: true, force: true });
    },
  };
}
