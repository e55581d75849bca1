import { posix } from "node:path";
import { invalidArgument } from "@chalk/core";

/**
 * Python minor versions that `Image.debianSlim` accepts, as the official `python:<version>-slim`
 * images ship them. Which of them a builder can make depends on the builder: see
 * `@chalk/image/builder`.
 */
export const PYTHON_VERSIONS = ["3.9", "3.10", "3.11", "3.12", "3.13", "3.14"] as const;

/** The Python version of `Image.debianSlim()` without an argument: Debian bookworm's python3. */
export const DEFAULT_PYTHON_VERSION = "3.11";

/** Longest command, package name, path or value the spec accepts (bytes of UTF-16, roughly). */
const MAX_STRING = 65_536;

/** Environment variable names: a letter or `_`, then letters, digits and `_`. */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

// PEP 508: a name, optional extras, then a version specifier list or `@ url`, then an optional
// `; marker`. Checked piecewise below so the error can say which part is wrong.
const PIP_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?/;
const PIP_EXTRAS = /^\s*\[\s*[A-Za-z0-9][A-Za-z0-9._-]*(?:\s*,\s*[A-Za-z0-9][A-Za-z0-9._-]*)*\s*\]/;
const PIP_VERSION_CLAUSE = /^\s*(?:===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9_.*+!-]+/;
const PIP_URL = /^\s*@\s*(?:https?|file|git\+https?|git\+ssh|hg\+https?|svn\+https?|bzr\+https?):\/\/\S+/;
const PIP_MARKER = /^\s*;\s*[^\n\r;]+$/;

// Debian policy 5.6.1: lower case letters, digits, `+`, `-`, `.`; at least two characters, starting
// with a letter or digit. apt-get also takes `:arch`, `=version` or `/release`.
const APT_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
const APT_ARCH = /^[a-z0-9-]+$/;
const APT_VERSION = /^[A-Za-z0-9.+~:-]+$/;
const APT_RELEASE = /^[A-Za-z0-9.-]+$/;

/** Throws invalid_argument unless `value` is a non-empty string without NUL bytes. */
export function checkString(value: unknown, field: string, what = "a non-empty string"): string {
  if (typeof value !== "string") throw invalidArgument(field, `expected ${what}, got ${typeof value}`);
  if (value === "") throw invalidArgument(field, "must not be empty", what);
  if (value.includes("\0")) throw invalidArgument(field, "must not contain NUL bytes", what);
  if (value.length > MAX_STRING) throw invalidArgument(field, `longer than ${MAX_STRING} characters`);
  return value;
}

/** A list of strings given as one string or an array. */
export function checkStringList(value: unknown, field: string): string[] {
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list)) throw invalidArgument(field, "expected a string or a list of strings");
  if (list.length === 0) throw invalidArgument(field, "must not be empty", "at least one entry");
  return list.map((v, i) => checkString(v, `${field}[${i}]`));
}

/**
 * Checks one pip requirement specifier (PEP 508, without local paths): `requests`,
 * `requests[socks]>=2.31,<3`, `numpy==1.26.*; python_version < "3.13"`, `pkg @ https://…/pkg.whl`.
 */
export function checkPipRequirement(value: unknown, field: string): string {
  const accepted =
    'a PEP 508 requirement such as "requests", "requests[socks]>=2.31,<3" or "pkg @ https://…"';
  const s = checkString(value, field, accepted).trim();
  if (/[\r\n\t]/.test(s)) throw invalidArgument(field, "must be one line", accepted);
  const name = PIP_NAME.exec(s);
  if (!name)
    throw invalidArgument(field, `${JSON.stringify(s)} does not start with a package name`, accepted);
  let rest = s.slice(name[0].length);
  const extras = PIP_EXTRAS.exec(rest);
  if (extras) rest = rest.slice(extras[0].length);
  const url = PIP_URL.exec(rest);
  if (url) {
    rest = rest.slice(url[0].length);
    // A marker after a URL needs a space before the `;` (PEP 508).
    if (rest !== "" && !/^\s+;/.test(rest)) {
      throw invalidArgument(field, `${JSON.stringify(s)}: unexpected text after the URL`, accepted);
    }
  } else {
    let clause = PIP_VERSION_CLAUSE.exec(rest);
    while (clause) {
      rest = rest.slice(clause[0].length);
      const comma = /^\s*,/.exec(rest);
      if (!comma) break;
      rest = rest.slice(comma[0].length);
      clause = PIP_VERSION_CLAUSE.exec(rest);
      if (!clause)
        throw invalidArgument(field, `${JSON.stringify(s)}: a version clause is malformed`, accepted);
    }
  }
  if (rest.trim() !== "" && !PIP_MARKER.test(rest)) {
    throw invalidArgument(field, `${JSON.stringify(s)} is not a valid requirement`, accepted);
  }
  return s;
}

/** Checks one Debian package for apt-get: `curl`, `libpq-dev`, `g++`, `curl=7.88.1-10`, `gcc/bookworm`. */
export function checkAptPackage(value: unknown, field: string): string {
  const accepted =
    "a Debian package name (lower case letters, digits, + - .; at least 2 characters), optionally with :arch, =version or /release";
  const s = checkString(value, field, accepted);
  const m = /^([^:=/]+)(?::([^=/]+))?(?:=(.+)|\/(.+))?$/.exec(s);
  if (!m || !APT_NAME.test(m[1] ?? "")) {
    throw invalidArgument(field, `${JSON.stringify(s)} is not a Debian package name`, accepted);
  }
  if (m[2] !== undefined && !APT_ARCH.test(m[2])) {
    throw invalidArgument(field, `${JSON.stringify(s)}: the architecture is malformed`, accepted);
  }
  if (m[3] !== undefined && !APT_VERSION.test(m[3])) {
    throw invalidArgument(field, `${JSON.stringify(s)}: the version is malformed`, accepted);
  }
  if (m[4] !== undefined && !APT_RELEASE.test(m[4])) {
    throw invalidArgument(field, `${JSON.stringify(s)}: the release is malformed`, accepted);
  }
  return s;
}

/** Checks an absolute path inside the image and returns it normalized (`/app/`, `/app/./x` → `/app`, `/app/x`). */
export function checkImagePath(value: unknown, field: string, options: { allowRoot?: boolean } = {}): string {
  const accepted = 'an absolute path inside the image, such as "/app"';
  const s = checkString(value, field, accepted);
  if (!s.startsWith("/")) throw invalidArgument(field, `${JSON.stringify(s)} is relative`, accepted);
  if (s.split("/").includes(".."))
    throw invalidArgument(field, `${JSON.stringify(s)} contains ".."`, accepted);
  const normalized = posix.normalize(s).replace(/(.)\/+$/, "$1");
  if (normalized === "/" && !options.allowRoot) throw invalidArgument(field, "must not be /", accepted);
  return normalized;
}

/** Checks environment variables: names as {@link ENV_NAME_PATTERN}, values without NUL bytes. */
export function checkEnvVars(value: unknown, field: string): [string, string][] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalidArgument(field, "expected an object of name → value", '{ LOG_LEVEL: "INFO" }');
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) throw invalidArgument(field, "must not be empty", "at least one variable");
  for (const [name, v] of entries) {
    if (!ENV_NAME_PATTERN.test(name)) {
      throw invalidArgument(
        `${field}.${name}`,
        `${JSON.stringify(name)} is not a valid environment variable name`,
        "a letter or _, then letters, digits and _",
      );
    }
    if (typeof v !== "string")
      throw invalidArgument(`${field}.${name}`, `expected a string, got ${typeof v}`);
    if (v.includes("\0")) throw invalidArgument(`${field}.${name}`, "must not contain NUL bytes");
    if (v.length > MAX_STRING)
      throw invalidArgument(`${field}.${name}`, `longer than ${MAX_STRING} characters`);
  }
  return entries as [string, string][];
}

/** Checks a Python version against {@link PYTHON_VERSIONS}. */
export function checkPythonVersion(value: unknown, field: string): string {
  const accepted = PYTHON_VERSIONS.join(", ");
  if (typeof value !== "string") throw invalidArgument(field, `expected a string such as "3.11"`, accepted);
  if (!(PYTHON_VERSIONS as readonly string[]).includes(value)) {
    throw invalidArgument(field, `unknown Python version ${JSON.stringify(value)}`, accepted);
  }
  return value;
}

/** Checks a package index URL: http(s), without credentials (they would be stored in the spec). */
export function checkIndexUrl(value: unknown, field: string): string {
  const accepted = "an http:// or https:// URL without credentials";
  const s = checkString(value, field, accepted);
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw invalidArgument(field, `${JSON.stringify(s)} is not a URL`, accepted);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw invalidArgument(field, `${JSON.stringify(url.protocol)} URLs are not supported`, accepted);
  }
  if (url.username || url.password) {
    throw invalidArgument(
      field,
      "credentials in a URL would be stored in the image spec, its digest input and the build log",
      accepted,
    );
  }
  return s;
}

/** Checks an argv: a non-empty list of strings without NUL bytes. */
export function checkArgv(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw invalidArgument(field, "expected a non-empty list of strings", '["python", "app.py"]');
  }
  return value.map((v, i) => {
    if (typeof v !== "string") throw invalidArgument(`${field}[${i}]`, `expected a string, got ${typeof v}`);
    if (v.includes("\0")) throw invalidArgument(`${field}[${i}]`, "must not contain NUL bytes");
    if (i === 0 && v === "") throw invalidArgument(`${field}[0]`, "the program must not be empty");
    return v;
  });
}

/** Checks a permission mode (0 to 0o7777). */
export function checkMode(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0o7777) {
    throw invalidArgument(field, `${String(value)} is not a permission mode`, "an integer from 0 to 0o7777");
  }
  return value;
}
