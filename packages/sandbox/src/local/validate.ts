import { stat } from "node:fs/promises";
import { ChalkError, Code, invalidArgument, parseCpu, parseInput, parseMemory } from "@chalk/core";
import { checkDiskBytes } from "@chalk/disk";
import { z } from "zod";
import { validateArgv } from "../exec-args.js";
import { checkExecLimits } from "../exec-limits.js";
import type { SandboxCreateOptions } from "../types.js";
import { DEFAULT_PIDS } from "./bundle.js";

const noNul = (s: string) => !s.includes("\0");
const absolutePath = z
  .string()
  .min(1)
  .refine((s) => s.startsWith("/"), "must be an absolute path")
  .refine(noNul, "must not contain NUL bytes");
/** overlayfs takes its layers as one option string: `:` and `,` separate its parts. */
const layerPath = absolutePath.refine(
  (s) => !/[:,\\]/.test(s),
  "must not contain ':', ',' or '\\' (overlayfs)",
);
const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "environment variable names are letters, digits and _");

const createSchema = z.object({
  rootfs: z.union([layerPath, z.array(layerPath).min(1, "at least one layer directory").max(128)]),
  command: z.array(z.string()).optional(),
  env: z.record(envName, z.string().refine(noNul, "must not contain NUL bytes")).optional(),
  workdir: absolutePath.optional(),
  cpu: z.string().optional(),
  memory: z.string().optional(),
  pids: z.number().int().min(8).max(65_536).optional(),
  disk: z.string().optional(),
  init: z.boolean().optional(),
  network: z
    .union([z.boolean(), z.object({ ports: z.array(z.number().int().min(1).max(65_535)).optional() })])
    .optional(),
  mounts: z
    .array(z.object({ source: absolutePath, target: absolutePath, readOnly: z.boolean().optional() }))
    .optional(),
  labels: z.record(z.string().max(253), z.string().max(1024)).optional(),
  logPath: absolutePath.optional(),
  logMaxBytes: z
    .number()
    .int()
    .min(4096)
    .max(2 ** 40)
    .optional(),
  id: z.string().optional(),
  writableLayerDir: layerPath.optional(),
});

/** Create options after validation, with defaults applied. */
export interface ValidCreateOptions {
  rootfs: string[];
  command: string[] | undefined;
  env: Record<string, string>;
  workdir: string;
  cpu: string | undefined;
  memory: string | undefined;
  pids: number;
  /** The disk limit as given, and in bytes; undefined for none. */
  disk: { quantity: string; bytes: number } | undefined;
  init: boolean;
  network: { ports: number[] } | undefined;
  mounts: { source: string; target: string; readOnly: boolean }[];
  labels: Record<string, string>;
  logPath: string | undefined;
  logMaxBytes: number;
  id: string | undefined;
}

/** Bytes of a sandbox's log file before it rotates, unless the create options say otherwise. */
export const DEFAULT_LOG_MAX_BYTES = 8 * 1024 * 1024;

async function requireDirectory(path: string, field: string): Promise<void> {
  const s = await stat(path).catch(() => undefined);
  if (!s) throw new ChalkError(Code.NotFound, `${field}: ${path} does not exist`, { field });
  if (!s.isDirectory()) {
    throw new ChalkError(Code.InvalidArgument, `${field}: ${path} is not a directory`, { field });
  }
}

/**
 * Checks create options completely before anything is made: shapes (zod), resource strings,
 * the command, and that every root filesystem layer and mount source exists.
 */
export async function validateCreateOptions(options: SandboxCreateOptions): Promise<ValidCreateOptions> {
  if (options?.image !== undefined) {
    throw invalidArgument(
      "image",
      "LocalRuntime runs root filesystems, not image references",
      "rootfs (resolve an image with ImageBuilder.resolve), or create through a Chalk server",
    );
  }
  const o = parseInput(createSchema, options);
  if (o.command !== undefined) validateArgv(o.command, "command");
  if (o.cpu !== undefined) parseCpu(o.cpu, "cpu");
  if (o.memory !== undefined) parseMemory(o.memory, "memory");
  let disk: ValidCreateOptions["disk"];
  if (o.disk !== undefined) {
    const bytes = parseMemory(o.disk, "disk");
    checkDiskBytes(bytes, "disk");
    disk = { quantity: o.disk, bytes };
  }
  checkExecLimits(o.command ?? [], o.env ?? {}, "command", "env");
  const rootfs = typeof o.rootfs === "string" ? [o.rootfs] : o.rootfs;
  for (const [i, layer] of rootfs.entries()) {
    await requireDirectory(layer, rootfs.length === 1 ? "rootfs" : `rootfs[${i}]`);
  }
  const mounts = (o.mounts ?? []).map((m) => ({
    source: m.source,
    target: m.target,
    readOnly: m.readOnly ?? false,
  }));
  for (const [i, m] of mounts.entries()) await requireDirectory(m.source, `mounts[${i}].source`);
  return {
    rootfs,
    command: o.command,
    env: o.env ?? {},
    workdir: o.workdir ?? "/",
    cpu: o.cpu,
    memory: o.memory,
    pids: o.pids ?? DEFAULT_PIDS,
    disk,
    init: o.init ?? true,
    network: o.network ? { ports: o.network === true ? [] : (o.network.ports ?? []) } : undefined,
    mounts,
    labels: o.labels ?? {},
    logPath: o.logPath,
    logMaxBytes: o.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES,
    id: o.id,
  };
}
