import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { ChalkError, Code, invalidArgument } from "@chalk/core";

/** Bytes of an AES-256 key. */
export const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** First byte of every sealed value: the format (AES-256-GCM, 12-byte nonce, 16-byte tag). */
const FORMAT_V1 = 1;

const KEY_FORMS = "32 bytes, as a Uint8Array, 64 hex digits or base64 (44 characters)";

/**
 * Parses a configured key: 32 raw bytes, 64 hex digits or base64 of 32 bytes. The error never
 * repeats what was given.
 */
export function parseKey(key: Uint8Array | string, field = "key"): Buffer {
  let bytes: Buffer;
  if (typeof key === "string") {
    const text = key.trim();
    if (/^[0-9a-fA-F]{64}$/.test(text)) bytes = Buffer.from(text, "hex");
    else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) bytes = Buffer.from(text, "base64");
    else throw invalidArgument(field, "is neither hex nor base64", KEY_FORMS);
  } else if (key instanceof Uint8Array) {
    bytes = Buffer.from(key);
  } else {
    throw invalidArgument(field, "must be bytes or a string", KEY_FORMS);
  }
  if (bytes.byteLength !== KEY_BYTES)
    throw invalidArgument(field, `decodes to ${bytes.byteLength} bytes`, KEY_FORMS);
  return bytes;
}

/** A short, one-way fingerprint of a key (HMAC-SHA256 of a constant, 8 bytes hex), for messages. */
export function keyId(key: Buffer): string {
  return createHmac("sha256", key).update("chalk-secrets key id").digest("hex").slice(0, 16);
}

/**
 * Reads the key file, or creates it with a new random key when it does not exist: written to a
 * temporary file created with mode 0600, fsynced, then hard-linked to its name (which fails if
 * another process created it meanwhile, whose key then wins). A key file readable by group or
 * others is refused.
 */
export function loadOrCreateKeyFile(path: string, create: boolean): { key: Buffer; created: boolean } {
  try {
    return { key: readKeyFile(path), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  if (!create) {
    throw new ChalkError(
      Code.FailedPrecondition,
      `the secret store key file ${path} is missing, but the database already holds secrets encrypted under a key; restore the key file or configure the key`,
    );
  }
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  const fd = openSync(tmp, "wx", 0o600);
  try {
    writeSync(fd, `${randomBytes(KEY_BYTES).toString("base64")}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  } finally {
    unlinkSync(tmp);
  }
  const dirFd = openSync(dirname(path), "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  return { key: readKeyFile(path), created: true };
}

function readKeyFile(path: string): Buffer {
  const st = statSync(path);
  if ((st.mode & 0o077) !== 0) {
    throw new ChalkError(
      Code.FailedPrecondition,
      `the secret store key file ${path} is readable by group or others (mode 0${(st.mode & 0o777).toString(8)}); chmod 600 it`,
    );
  }
  return parseKey(readFileSync(path, "utf8"), "keyFile");
}

/**
 * Additional authenticated data that binds a sealed value to where it is stored: moving a
 * ciphertext to another row (another environment, name or owner) makes it fail to open.
 */
export function aadFor(...parts: string[]): Buffer {
  return Buffer.from(["chalk-secrets/v1", ...parts].join("\0"), "utf8");
}

/** Encrypts with AES-256-GCM under a fresh random 12-byte nonce: `format ‖ nonce ‖ ciphertext ‖ tag`. */
export function seal(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([FORMAT_V1]), nonce, body, cipher.getAuthTag()]);
}

/** Decrypts a sealed value; undefined when the key, the AAD or the bytes do not match. */
export function unseal(key: Buffer, sealed: Uint8Array, aad: Buffer): Buffer | undefined {
  const buf = Buffer.from(sealed);
  if (buf.byteLength < 1 + NONCE_BYTES + TAG_BYTES || buf[0] !== FORMAT_V1) return undefined;
  const nonce = buf.subarray(1, 1 + NONCE_BYTES);
  const tag = buf.subarray(buf.byteLength - TAG_BYTES);
  const body = buf.subarray(1 + NONCE_BYTES, buf.byteLength - TAG_BYTES);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    return undefined;
  }
}
