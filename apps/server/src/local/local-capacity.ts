import { readdirSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";
import type { BackendCapacity } from "../backend/compute-backend.js";

/**
 * What one container can get on this machine: its memory, its CPUs, and its NVIDIA GPUs (one
 * `/dev/nvidiaN` device each; their type is not known here). GPUs are counted, not yet passed into
 * sandboxes.
 */
export function localCapacity(): BackendCapacity {
  let gpus = 0;
  try {
    gpus = readdirSync("/dev").filter((d) => /^nvidia\d+$/.test(d)).length;
  } catch {
    gpus = 0;
  }
  return {
    memoryBytes: totalmem(),
    cpuMillis: availableParallelism() * 1000,
    gpus: gpus > 0 ? [{ type: undefined, count: gpus }] : [],
  };
}
