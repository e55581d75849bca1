import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, test } from "vitest";
import { podProgress } from "./pod-status.js";

const pod = (status: V1Pod["status"]): V1Pod => (status === undefined ? {} : { status });
const main = (state: object) => ({
  name: "main",
  image: "x",
  imageID: "",
  ready: false,
  restartCount: 0,
  state,
});

describe("podProgress: Pod phase and container states to the backend's view", () => {
  test.each([
    [
      "running",
      pod({ phase: "Running", containerStatuses: [main({ running: { startedAt: new Date() } })] }),
      { state: "running" },
    ],
    [
      "exited 3",
      pod({ phase: "Failed", containerStatuses: [main({ terminated: { exitCode: 3, reason: "Error" } })] }),
      { state: "terminated", exit: { exitCode: 3, signal: null, timedOut: false, oomKilled: false } },
    ],
    [
      "OOMKilled",
      pod({
        phase: "Failed",
        containerStatuses: [main({ terminated: { exitCode: 137, reason: "OOMKilled" } })],
      }),
      { state: "terminated", reason: "OOMKilled", exit: { oomKilled: true } },
    ],
    [
      "ImagePullBackOff",
      pod({
        phase: "Pending",
        containerStatuses: [
          main({ waiting: { reason: "ImagePullBackOff", message: 'Back-off pulling image "r/x"' } }),
        ],
      }),
      { state: "failed", reason: "ImagePullBackOff", message: 'Back-off pulling image "r/x"' },
    ],
    [
      "ErrImagePull (the first try: wait for the back-off)",
      pod({ phase: "Pending", containerStatuses: [main({ waiting: { reason: "ErrImagePull" } })] }),
      { state: "pending", reason: "ErrImagePull" },
    ],
    [
      "CrashLoopBackOff",
      pod({
        phase: "Running",
        containerStatuses: [main({ waiting: { reason: "CrashLoopBackOff", message: "back-off 10s" } })],
      }),
      { state: "failed", reason: "CrashLoopBackOff" },
    ],
    [
      "CreateContainerConfigError (a missing Secret key)",
      pod({
        phase: "Pending",
        containerStatuses: [main({ waiting: { reason: "CreateContainerConfigError" } })],
      }),
      { state: "failed", reason: "CreateContainerConfigError" },
    ],
    [
      "Unschedulable",
      pod({
        phase: "Pending",
        conditions: [
          {
            type: "PodScheduled",
            status: "False",
            reason: "Unschedulable",
            message: "0/1 nodes: Insufficient memory",
          },
        ],
      }),
      { state: "failed", reason: "Unschedulable", message: "0/1 nodes: Insufficient memory" },
    ],
    [
      "Unschedulable while a claim binds (a moment's wait)",
      pod({
        phase: "Pending",
        conditions: [
          {
            type: "PodScheduled",
            status: "False",
            reason: "Unschedulable",
            message: "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
          },
        ],
      }),
      { state: "pending" },
    ],
    [
      "Evicted",
      pod({ phase: "Failed", reason: "Evicted", message: "low on memory" }),
      { state: "failed", reason: "Evicted" },
    ],
    ["just created", pod({ phase: "Pending" }), { state: "pending" }],
  ])("%s", (_name, input, expected) => {
    expect(podProgress(input)).toMatchObject(expected);
  });
});
