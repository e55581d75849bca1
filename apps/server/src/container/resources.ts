import { ChalkError, Code, formatBytes, parseCpu, parseMemory } from "@chalk/core";
import type { ContainerSpec } from "@chalk/spec";
import type { BackendCapacity } from "../backend/compute-backend.js";
import type { EnvironmentDefaults } from "../config.js";

/** Resources in force for a container: the request over the environment's defaults. */
export interface ContainerResources {
  cpuMillis: number;
  memoryBytes: number;
  gpu: ContainerSpec["resources"]["gpu"];
  /** Disk limit of the container's writable layer, in bytes (the server's `--default-disk`); undefined: none. */
  diskBytes: number | undefined;
}

/**
 * The resources of a request: what it asks for, else the environment's defaults, and the server's
 * disk limit (`diskBytes`, undefined: none); refused with
 * failed_precondition (naming the field) when the backend can never give that much CPU, memory or
 * such a GPU: more CPUs than the largest machine (node) has can never be used, so `cpu` is refused
 * there as `docker run --cpus` is (its range ends at the machine's CPU count).
 */
export function admitResources(
  spec: Pick<ContainerSpec, "resources" | "gpu">,
  defaults: EnvironmentDefaults,
  capacity: BackendCapacity,
  backend: string,
  diskBytes?: number,
): ContainerResources {
  const cpuMillis = spec.resources.cpuMillis ?? parseCpu(defaults.cpu, "cpu");
  const memoryBytes = spec.resources.memoryBytes ?? parseMemory(defaults.memory, "memory");
  const gpu = spec.resources.gpu;
  if (gpu) {
    const fits = capacity.gpus.some(
      (g) => (gpu.type === undefined || g.type === undefined || g.type === gpu.type) && g.count >= gpu.count,
    );
    if (!fits) {
      const have =
        capacity.gpus.length === 0
          ? "no GPU"
          : capacity.gpus.map((g) => `${g.count} × ${g.type ?? "GPU"}`).join(", ");
      throw new ChalkError(
        Code.FailedPrecondition,
        `gpu: ${JSON.stringify(spec.gpu)} requested, but the ${backend} backend has ${have}; run without gpu, or on a server with GPU nodes`,
        { field: "gpu" },
      );
    }
  }
  if (cpuMillis > capacity.cpuMillis) {
    throw new ChalkError(
      Code.FailedPrecondition,
      `cpu: ${formatCpu(cpuMillis)} requested, but the ${backend} backend gives a container at most ${formatCpu(capacity.cpuMillis)}`,
      { field: "cpu" },
    );
  }
  if (memoryBytes > capacity.memoryBytes) {
    throw new ChalkError(
      Code.FailedPrecondition,
      `memory: ${formatBytes(memoryBytes)} requested, but the ${backend} backend gives a container at most ${formatBytes(capacity.memoryBytes)}`,
      { field: "memory" },
    );
  }
  return { cpuMillis, memoryBytes, gpu, diskBytes };
}

/** A CPU amount as users write it: `2` for whole CPUs, else millicores (`1500m`). */
function formatCpu(millis: number): string {
  return millis % 1000 === 0 ? `${millis / 1000} CPUs` : `${millis}m CPU`;
}
