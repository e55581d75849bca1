import { parseCpu, parseMemory } from "@chalk/core";
import type { V1Node } from "@kubernetes/client-node";
import type { BackendCapacity } from "../backend/compute-backend.js";

/**
 * What one container can get on a cluster: the memory and CPU of the node with the most
 * allocatable of each (a Pod runs on one node), and each node's `nvidia.com/gpu` count with its GPU
 * type from the label `gpuNodeLabel` (undefined when the node lacks the label).
 */
export function nodeCapacity(nodes: readonly V1Node[], gpuNodeLabel: string): BackendCapacity {
  let memoryBytes = 0;
  let cpuMillis = 0;
  const gpus: BackendCapacity["gpus"] = [];
  for (const n of nodes) {
    const a = n.status?.allocatable ?? {};
    if (a.memory) memoryBytes = Math.max(memoryBytes, parseMemory(a.memory));
    if (a.cpu) cpuMillis = Math.max(cpuMillis, parseCpu(a.cpu));
    const g = Number(a["nvidia.com/gpu"] ?? 0);
    if (g > 0) gpus.push({ type: n.metadata?.labels?.[gpuNodeLabel], count: g });
  }
  return { memoryBytes, cpuMillis, gpus };
}
