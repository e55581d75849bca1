import { invalidArgument } from "@chalk/core";

/** The form of a secret, integration or key name: an environment variable name. */
export const SECRET_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Longest secret, integration or key name, in characters. */
export const MAX_SECRET_NAME_LENGTH = 256;
/** Largest secret value, in UTF-8 bytes. */
export const MAX_SECRET_VALUE_BYTES = 64 * 1024;
/** Most keys in one integration. */
export const MAX_INTEGRATION_KEYS = 100;

const NAME_FORM = `an environment variable name ([A-Za-z_][A-Za-z0-9_]*), at most ${MAX_SECRET_NAME_LENGTH} characters`;
const ENVIRONMENT_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const OWNER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,255}$/;

/**
 * Returns `name` when it is a valid secret (or integration, or key) name, else throws
 * invalid_argument naming `field`.
 */
export function checkSecretName(name: unknown, field = "name"): string {
  if (typeof name !== "string" || name === "") throw invalidArgument(field, "a name is required", NAME_FORM);
  if (name.length > MAX_SECRET_NAME_LENGTH || !SECRET_NAME_PATTERN.test(name)) {
    throw invalidArgument(field, `${JSON.stringify(name.slice(0, 64))} is not a valid name`, NAME_FORM);
  }
  return name;
}

/**
 * Returns `value` when it is an acceptable secret value (a string of at most 64 KiB of UTF-8 without
 * NUL, since it becomes an environment variable and no process environment can hold a NUL byte),
 * else throws invalid_argument naming `field`. The message never contains the value.
 */
export function checkSecretValue(value: unknown, field = "value"): string {
  if (typeof value !== "string") throw invalidArgument(field, "must be a string");
  const nul = value.indexOf("\0");
  if (nul >= 0) {
    throw invalidArgument(
      field,
      `holds a NUL byte (at UTF-16 offset ${nul}), which no environment variable can carry`,
      "UTF-8 text without NUL",
    );
  }
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > MAX_SECRET_VALUE_BYTES) {
    throw invalidArgument(field, `is ${bytes} bytes`, `at most ${MAX_SECRET_VALUE_BYTES} bytes of UTF-8`);
  }
  return value;
}

/** Returns `environment` when it is a valid environment name, else throws invalid_argument. */
export function checkEnvironmentName(environment: unknown): string {
  if (typeof environment !== "string" || !ENVIRONMENT_PATTERN.test(environment)) {
    throw invalidArgument(
      "environment",
      `${JSON.stringify(String(environment).slice(0, 64))} is not a valid environment name`,
      "1-63 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit",
    );
  }
  return environment;
}

/** Returns `owner` when it is a valid owner id for temporary secrets, else throws invalid_argument. */
export function checkOwner(owner: unknown): string {
  if (typeof owner !== "string" || !OWNER_PATTERN.test(owner)) {
    throw invalidArgument(
      "owner",
      `${JSON.stringify(String(owner).slice(0, 64))} is not a valid owner id`,
      "1-256 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-', starting with a letter or digit",
    );
  }
  return owner;
}
