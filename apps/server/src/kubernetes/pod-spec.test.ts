import { describe, expect, test } from "vitest";
import type { ContainerLaunch } from "../backend/compute-backend.js";
import { IDLE_COMMAND, podFor, secretKeyFor } from "./pod-spec.js";

const launch = (over: Partial<ContainerLaunch> = {}): ContainerLaunch => ({
  id: "0b4f3c1e-1111-4222-8333-944445555666",
  environment: "team.a_b",
  name: "api",
  image: {
    imageUri: "r:5000/app@sha256:aa",
    digest: "",
    locator: "r:5000/app@sha256:aa",
    env: {},
    workdir: undefined,
    entrypoint: [],
    cached: true,
  },
  command: ["python", "-m", "app"],
  env: { LOG_LEVEL: "INFO", OPENAI_API_KEY: "shadowed-by-the-secret" },
  secrets: [{ kind: "secret", name: "OPENAI_API_KEY" }],
  mounts: [{ volume: "data", subPath: ["models", "v1"], target: "/models", readOnly: true }],
  resources: { cpuMillis: 500, memoryBytes: 512 * 2 ** 20, gpu: undefined, diskBytes: undefined },
  port: 8080,
  ...over,
});

const options = {
  namespace: "chalk-team-1a-2b",
  podName: "c-0b4f3c1e-1111-4222-8333-944445555666",
  runtimeClassName: "gvisor",
  image: "r:5000/app@sha256:aa",
  role: "container" as const,
  secret: { name: "c-0b4f3c1e-1111-4222-8333-944445555666-env", keys: { OPENAI_API_KEY: "OPENAI_API_KEY" } },
  volumesClaim: "chalk-volumes",
  gpuNodeLabel: "cloud.google.com/gke-accelerator",
  workdir: "/app",
};

describe("podFor: the Pod of a container, field by field", () => {
  test("gVisor, resources, command, env by value and by secretKeyRef, volume by subPath, port", () => {
    const pod = podFor(launch(), options);
    expect(pod.metadata).toMatchObject({
      name: options.podName,
      namespace: options.namespace,
      labels: {
        "app.kubernetes.io/managed-by": "chalk",
        "chalk.dev/container-id": launch().id,
        "chalk.dev/role": "container",
      },
      annotations: { "chalk.dev/environment": "team.a_b", "chalk.dev/name": "api" },
    });
    const spec = pod.spec!;
    expect(spec.runtimeClassName).toBe("gvisor");
    expect(spec.restartPolicy).toBe("Never");
    // The pause process is PID 1 of the Pod's one PID namespace and reaps orphans.
    expect(spec.shareProcessNamespace).toBe(true);
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.enableServiceLinks).toBe(false);
    expect(spec.containers).toHaveLength(1);
    const c = spec.containers[0]!;
    expect(c.name).toBe("main");
    expect(c.image).toBe("r:5000/app@sha256:aa");
    expect(c.command).toEqual(["python", "-m", "app"]);
    expect(c.args).toEqual([]);
    expect(c.workingDir).toBe("/app");
    expect(c.resources).toEqual({
      requests: { cpu: "500m", memory: String(512 * 2 ** 20) },
      limits: { cpu: "500m", memory: String(512 * 2 ** 20) },
    });
    expect(c.env).toEqual([
      { name: "LOG_LEVEL", value: "INFO" },
      {
        name: "OPENAI_API_KEY",
        valueFrom: { secretKeyRef: { name: options.secret.name, key: "OPENAI_API_KEY", optional: false } },
      },
    ]);
    expect(c.volumeMounts).toEqual([
      { name: "chalk-volumes", mountPath: "/models", subPath: "data/data/models/v1", readOnly: true },
    ]);
    expect(spec.volumes).toEqual([
      { name: "chalk-volumes", persistentVolumeClaim: { claimName: "chalk-volumes" } },
    ]);
    expect(c.ports).toEqual([{ containerPort: 8080, protocol: "TCP" }]);
    expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false });
  });

  test("no secret value is anywhere in the Pod", () => {
    const pod = podFor(launch(), options);
    expect(JSON.stringify(pod)).not.toContain("shadowed-by-the-secret");
  });

  test("without an entrypoint the idle process runs; without a port or mounts none is declared", () => {
    const pod = podFor(launch({ command: [], port: undefined, mounts: [] }), {
      ...options,
      secret: undefined,
    });
    const c = pod.spec!.containers[0]!;
    expect(c.command).toEqual([...IDLE_COMMAND]);
    expect(c.ports).toBeUndefined();
    expect(c.volumeMounts).toBeUndefined();
    expect(pod.spec!.volumes).toBeUndefined();
  });

  test("a disk limit (--default-disk) becomes the container's ephemeral-storage request and limit", () => {
    const pod = podFor(
      launch({
        resources: { cpuMillis: 500, memoryBytes: 2 ** 29, gpu: undefined, diskBytes: 10 * 2 ** 30 },
      }),
      options,
    );
    const { requests, limits } = pod.spec!.containers[0]!.resources!;
    expect(limits!["ephemeral-storage"]).toBe(String(10 * 2 ** 30));
    expect(requests!["ephemeral-storage"]).toBe(String(10 * 2 ** 30));
    expect(podFor(launch(), options).spec!.containers[0]!.resources!.limits).not.toHaveProperty(
      "ephemeral-storage",
    );
  });

  test("a GPU becomes an nvidia.com/gpu limit, a node selector on the type and the toleration", () => {
    const pod = podFor(
      launch({
        resources: {
          cpuMillis: 1000,
          memoryBytes: 2 ** 30,
          gpu: { type: "nvidia-l4", count: 2 },
          diskBytes: undefined,
        },
      }),
      options,
    );
    expect(pod.spec!.containers[0]!.resources!.limits!["nvidia.com/gpu"]).toBe("2");
    expect(pod.spec!.nodeSelector).toEqual({ "cloud.google.com/gke-accelerator": "nvidia-l4" });
    expect(pod.spec!.tolerations).toEqual([
      { key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" },
    ]);
  });

  test("the CPU request is a percentage of the limit when configured; memory is requested in full", () => {
    const pod = podFor(launch(), { ...options, cpuRequestPercent: 10 });
    expect(pod.spec!.containers[0]!.resources).toEqual({
      requests: { cpu: "50m", memory: String(512 * 2 ** 20) },
      limits: { cpu: "500m", memory: String(512 * 2 ** 20) },
    });
  });

  test("env var names that are not Secret keys get positional keys", () => {
    expect(secretKeyFor("OPENAI_API_KEY", 0)).toBe("OPENAI_API_KEY");
    expect(secretKeyFor("weird name", 3)).toBe("k3");
  });
});
