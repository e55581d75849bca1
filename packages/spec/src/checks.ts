import { posix } from "node:path";
import { invalidArgument, parseCpu, parseGpu, parseMemory } from "@chalk/core";
import { validateArgv } from "@chalk/sandbox";
import { checkVolumeName } from "@chalk/volume";
import { CONTAINER_LIMITS } from "./limits.js";

/** The form of a container name: a DNS label. */
export const CONTAINER_NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** {@link CONTAINER_NAME_PATTERN} in words, for errors. */
export const CONTAINER_NAME_FORM =
  "1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit";

/** The form of an environment variable name. */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

const utf8 = new TextEncoder();

/** Returns `name` when it is a valid container name, else throws invalid_argument naming `field`. */
export function checkContainerName(name: unknown, field = "name"): string {
  if (typeof name !== "string" || name === "") {
    throw invalidArgument(field, "a container name is required", CONTAINER_NAME_FORM);
  }
  if (!CONTAINER_NAME_PATTERN.test(name)) {
    throw invalidArgument(
      field,
      `${JSON.stringify(name.slice(0, 80))} is not a valid container name`,
      CONTAINER_NAME_FORM,
    );
  }
  return name;
}

/** Checks an environment-variable map: names, no NUL bytes, count and size limits. */
export function checkEnv(env: unknown, field = "env"): Record<string, string> {
  if (env === undefined || env === null) return {};
  if (typeof env !== "object" || Array.isArray(env)) {
    throw invalidArgument(field, "expected an object of name → value strings");
  }
  const entries = Object.entries(env as Record<string, unknown>);
  if (entries.length > CONTAINER_LIMITS.envVars) {
    throw invalidArgument(field, `${entries.length} variables; at most ${CONTAINER_LIMITS.envVars}`);
  }
  let bytes = 0;
  for (const [k, v] of entries) {
    checkEnvName(k, `${field}.${k.slice(0, 80)}`);
    if (typeof v !== "string") throw invalidArgument(`${field}.${k}`, `expected a string, got ${typeof v}`);
    if (v.includes("\0")) throw invalidArgument(`${field}.${k}`, "contains a NUL byte");
    bytes += utf8.encode(k).length + utf8.encode(v).length;
  }
  if (bytes > CONTAINER_LIMITS.envBytes) {
    throw invalidArgument(field, `${bytes} bytes in total; at most ${CONTAINER_LIMITS.envBytes}`);
  }
  return env as Record<string, string>;
}

/** Checks one environment variable name (`[A-Za-z_][A-Za-z0-9_]*`, at most 256 characters). */
export function checkEnvName(name: unknown, field: string): string {
  if (
    typeof name !== "string" ||
    !ENV_NAME_PATTERN.test(name) ||
    name.length > CONTAINER_LIMITS.envNameLength
  ) {
    throw invalidArgument(
      field,
      `${JSON.stringify(String(name).slice(0, 80))} is not an environment variable name`,
      "letters, digits and '_', not starting with a digit, at most 256 characters",
    );
  }
  return name;
}

/** Checks an argv (entrypoint or exec command): non-empty strings list, no NUL bytes, bounded size. */
export function checkCommand(argv: unknown, field: string): string[] {
  if (!Array.isArray(argv))
    throw invalidArgument(field, "expected a list of strings", '["python", "-c", "…"]');
  validateArgv(argv, field);
  if (argv.length > CONTAINER_LIMITS.argvLength) {
    throw invalidArgument(field, `${argv.length} arguments; at most ${CONTAINER_LIMITS.argvLength}`);
  }
  const bytes = argv.reduce((n: number, a: string) => n + utf8.encode(a).length + 1, 0);
  if (bytes > CONTAINER_LIMITS.argvBytes) {
    throw invalidArgument(field, `${bytes} bytes; at most ${CONTAINER_LIMITS.argvBytes}`);
  }
  return argv as string[];
}

const forbiddenMountRoots = ["/proc", "/sys", "/dev"];

/**
 * Checks a mount path inside the container: absolute, normalized (no `.`/`..` components, no `//`),
 * not `/` and not below `/proc`, `/sys` or `/dev`, no NUL bytes, at most 4096 bytes.
 */
export function checkMountPath(path: unknown, field: string): string {
  const accepted = 'an absolute, normalized path such as "/data" (not "/", /proc, /sys or /dev)';
  if (typeof path !== "string" || path === "") throw invalidArgument(field, "a path is required", accepted);
  if (path.includes("\0")) throw invalidArgument(field, "contains a NUL byte", accepted);
  if (utf8.encode(path).length > 4096) throw invalidArgument(field, "is longer than 4096 bytes", accepted);
  if (!path.startsWith("/"))
    throw invalidArgument(field, `${JSON.stringify(path)} is not absolute`, accepted);
  const normal = posix.normalize(path).replace(/\/+$/, "");
  if (normal !== path || path.split("/").some((c) => c === "." || c === "..")) {
    throw invalidArgument(field, `${JSON.stringify(path)} is not normalized`, accepted);
  }
  if (normal === "" || forbiddenMountRoots.some((r) => normal === r || normal.startsWith(`${r}/`))) {
    throw invalidArgument(field, `${JSON.stringify(path)} cannot be a mount point`, accepted);
  }
  return path;
}

/** A named volume to mount, as `[volumeName, mountPath]`. */
export type VolumeTuple = readonly [name: string, mountPath: string];

/**
 * Checks `volumes: [["vol", "/data"], …]`: each a pair of a volume name and a mount path; no two on
 * one path; at most 32.
 */
export function checkVolumes(volumes: unknown, field = "volumes"): VolumeTuple[] {
  if (volumes === undefined || volumes === null) return [];
  const accepted = '[["volume-name", "/mount/path"], …]';
  if (!Array.isArray(volumes))
    throw invalidArgument(field, "expected a list of [name, path] pairs", accepted);
  if (volumes.length > CONTAINER_LIMITS.volumes) {
    throw invalidArgument(field, `${volumes.length} volumes; at most ${CONTAINER_LIMITS.volumes}`);
  }
  const seen = new Set<string>();
  return volumes.map((v, i) => {
    if (!Array.isArray(v) || v.length !== 2) {
      throw invalidArgument(`${field}[${i}]`, "expected a [name, path] pair", accepted);
    }
    const name = checkVolumeName(v[0], `${field}[${i}][0]`);
    const path = checkMountPath(v[1], `${field}[${i}][1]`);
    if (seen.has(path))
      throw invalidArgument(`${field}[${i}][1]`, `${JSON.stringify(path)} is mounted twice`);
    seen.add(path);
    return [name, path] as const;
  });
}

/** Checks a port: an integer from 1 to 65535 (undefined or 0: none). */
export function checkPort(port: unknown, field = "port"): number | undefined {
  if (port === undefined || port === null || port === 0) return undefined;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalidArgument(field, `${String(port).slice(0, 40)} is not a port`, "an integer from 1 to 65535");
  }
  return port;
}

/** Parsed resources: millicores, bytes, and the GPU request if any. */
export interface ParsedResources {
  cpuMillis: number | undefined;
  memoryBytes: number | undefined;
  gpu: { type: string | undefined; count: number } | undefined;
}

/**
 * Parses optional cpu, memory and gpu strings (Kubernetes conventions: exact quantities, no
 * whitespace). Errors name `${prefix}cpu`, `${prefix}memory` or `${prefix}gpu` (`spec.memory` with the
 * prefix `"spec."`).
 */
export function checkResources(
  r: { cpu?: unknown; memory?: unknown; gpu?: unknown },
  prefix = "",
): ParsedResources {
  const opt = (v: unknown) => (v === undefined || v === null || v === "" ? undefined : v);
  const cpu = opt(r.cpu);
  const memory = opt(r.memory);
  const gpu = opt(r.gpu);
  return {
    cpuMillis: cpu === undefined ? undefined : parseCpu(cpu as string, `${prefix}cpu`),
    memoryBytes: memory === undefined ? undefined : parseMemory(memory as string, `${prefix}memory`),
    gpu: gpu === undefined ? undefined : parseGpu(gpu as string, `${prefix}gpu`),
  };
}

/** Checks a duration in seconds: a finite number from 0 to `max`. */
export function checkSeconds(value: unknown, field: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > max) {
    throw invalidArgument(field, `${String(value).slice(0, 40)} is not a number of seconds`, `0 to ${max}`);
  }
  return value;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Checks a container id (a lower-case UUID). */
export function checkContainerId(id: unknown, field = "id"): string {
  if (typeof id !== "string" || !uuidPattern.test(id)) {
    throw invalidArgument(
      field,
      `${JSON.stringify(String(id).slice(0, 80))} is not a container id`,
      "a UUID such as 550e8400-e29b-41d4-a716-446655440000",
    );
  }
  return id;
}

/** Checks a log tail length: undefined or 0 (everything), else a line count up to 2^32 - 1. */
export function checkTailLines(value: unknown, field = "tailLines"): number {
  if (value === undefined) return 0;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw invalidArgument(field, `${String(value).slice(0, 40)} is not a number of lines`, "an integer ≥ 0");
  }
  return value;
}
