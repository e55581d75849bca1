import { describe, expect, test } from "vitest";
import { nodeCapacity } from "./node-capacity.js";

describe("nodeCapacity", () => {
  test("a container gets at most the largest node's CPU and memory, and each node's GPUs with their type", () => {
    const label = "cloud.google.com/gke-accelerator";
    const capacity = nodeCapacity(
      [
        { status: { allocatable: { cpu: "2", memory: "8Gi" } } },
        {
          metadata: { labels: { [label]: "nvidia-l4" } },
          status: { allocatable: { cpu: "1500m", memory: "16Gi", "nvidia.com/gpu": "2" } },
        },
        { status: { allocatable: { "nvidia.com/gpu": "1" } } },
      ],
      label,
    );
    expect(capacity).toEqual({
      cpuMillis: 2000,
      memoryBytes: 16 * 2 ** 30,
      gpus: [
        { type: "nvidia-l4", count: 2 },
        { type: undefined, count: 1 },
      ],
    });
  });

  test("no nodes: nothing fits", () => {
    expect(nodeCapacity([], "x")).toEqual({ cpuMillis: 0, memoryBytes: 0, gpus: [] });
  });
});
