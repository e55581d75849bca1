import { invalidArgument } from "./errors.js";

/** Accepted CPU forms, as shown in errors. */
export const CPU_FORMS = 'cores as "2" or "0.5", or millicores as "500m"';
/** Accepted memory forms, as shown in errors. */
export const MEMORY_FORMS =
  'bytes with an optional suffix: "512Mi", "2Gi", "1G", "500M", "64Ki", "1048576" (Ki Mi Gi Ti Pi, k M G T P)';
/** Accepted GPU forms, as shown in errors. */
export const GPU_FORMS = '"type:count" ("nvidia-l4:1"), "type" (count 1) or "count" ("2")';

const cpuPattern = /^(?:(\d+)m|(\d+(?:\.\d+)?|\.\d+))$/;

/**
 * Parses a Kubernetes CPU quantity into millicores: `"2"` → 2000, `"0.5"` → 500, `"500m"` → 500.
 *
 * @param field - the request field, named in the error.
 * @throws ChalkError invalid_argument naming the field and the accepted forms.
 */
export function parseCpu(value: string, field = "cpu"): number {
  if (typeof value !== "string")
    throw invalidArgument(field, `expected a string, got ${typeof value}`, CPU_FORMS);
  // No trimming: " 1" is not a quantity, as in Kubernetes.
  const m = cpuPattern.exec(value);
  if (!m) throw invalidArgument(field, `${JSON.stringify(value)} is not a CPU quantity`, CPU_FORMS);
  const millis = m[1] !== undefined ? Number(m[1]) : Math.round(Number(m[2]) * 1000);
  if (!Number.isFinite(millis) || millis <= 0) {
    throw invalidArgument(field, `${JSON.stringify(value)} must be more than zero`, CPU_FORMS);
  }
  if (millis > 1_024_000)
    throw invalidArgument(field, `${JSON.stringify(value)} is too large (max 1024 cores)`);
  return millis;
}

const memoryUnits: Record<string, number> = {
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
};
const memoryPattern = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$/;

/**
 * Parses a Kubernetes memory quantity into bytes: `"512Mi"` → 536870912, `"1G"` → 1e9.
 *
 * @throws ChalkError invalid_argument naming the field and the accepted forms.
 */
export function parseMemory(value: string, field = "memory"): number {
  if (typeof value !== "string") {
    throw invalidArgument(field, `expected a string, got ${typeof value}`, MEMORY_FORMS);
  }
  const m = memoryPattern.exec(value);
  if (!m) throw invalidArgument(field, `${JSON.stringify(value)} is not a memory quantity`, MEMORY_FORMS);
  const bytes = Math.floor(Number(m[1]) * (memoryUnits[m[2] ?? ""] ?? 1));
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw invalidArgument(field, `${JSON.stringify(value)} must be a positive size`, MEMORY_FORMS);
  }
  if (bytes < 4 * 2 ** 20) {
    throw invalidArgument(field, `${JSON.stringify(value)} is below the minimum of 4Mi`, MEMORY_FORMS);
  }
  return bytes;
}

/** A parsed GPU request. */
export interface GpuRequest {
  /** Accelerator type (`nvidia-l4`), or undefined when only a count was given. */
  type: string | undefined;
  /** Number of GPUs, at least 1. */
  count: number;
}

const gpuTypePattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * Parses a GPU request: `"nvidia-l4:1"`, `"nvidia-l4"` (count 1) or `"2"` (count only).
 *
 * @throws ChalkError invalid_argument naming the field and the accepted forms.
 */
export function parseGpu(value: string, field = "gpu"): GpuRequest {
  if (typeof value !== "string" || value.trim() === "") {
    throw invalidArgument(field, "expected a non-empty string", GPU_FORMS);
  }
  const v = value.trim();
  const [typePart, countPart, extra] = v.split(":");
  if (extra !== undefined)
    throw invalidArgument(field, `${JSON.stringify(value)} has more than one ":"`, GPU_FORMS);
  const parseCount = (s: string): number => {
    if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 64) {
      throw invalidArgument(
        field,
        `${JSON.stringify(value)}: count must be a whole number from 1 to 64`,
        GPU_FORMS,
      );
    }
    return Number(s);
  };
  if (countPart === undefined && typePart !== undefined && /^\d+$/.test(typePart)) {
    return { type: undefined, count: parseCount(typePart) };
  }
  if (typePart === undefined || !gpuTypePattern.test(typePart)) {
    throw invalidArgument(
      field,
      `${JSON.stringify(value)}: type must be lower-case letters, digits and "-"`,
      GPU_FORMS,
    );
  }
  return { type: typePart, count: countPart === undefined ? 1 : parseCount(countPart) };
}

/** Formats bytes as a short human-readable string (`1.5 GiB`), for messages. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}
