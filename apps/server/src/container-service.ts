import type { MessageInitShape } from "@bufbuild/protobuf";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import {
  type ContainerInfoSchema,
  type ContainerService,
  type ContainerSpec,
  ContainerStatus,
} from "@chalk/proto/container/v1";
import type { ServiceImpl } from "@chalk/rpc";
import { signalNumber } from "@chalk/sandbox";
import {
  CONTAINER_LIMITS,
  checkCommand,
  checkContainerId,
  checkContainerName,
  checkEnv,
  checkSeconds,
} from "@chalk/spec";
import type { ContainerManager, ContainerRef, RunInput, SecretSourceInput } from "./container-manager.js";
import type { ServerMetrics } from "./metrics.js";
import type { ContainerRecord, ContainerStatus as Status } from "./state.js";

const statusToWire: Record<Status, ContainerStatus> = {
  Pending: ContainerStatus.PENDING,
  Running: ContainerStatus.RUNNING,
  Succeeded: ContainerStatus.SUCCEEDED,
  Failed: ContainerStatus.FAILED,
  Stopped: ContainerStatus.STOPPED,
  Unknown: ContainerStatus.UNKNOWN,
};

const statusFromWire = new Map<ContainerStatus, Status>(
  Object.entries(statusToWire).map(([k, v]) => [v, k as Status]),
);

/** A container record as the API shows it (no secret values: only references). */
export function containerToWire(r: ContainerRecord): MessageInitShape<typeof ContainerInfoSchema> {
  return {
    id: r.id,
    name: r.name,
    status: statusToWire[r.status],
    statusMessage: r.statusMessage,
    createdAtMs: BigInt(r.createdAt),
    stoppedAtMs: BigInt(r.stoppedAt ?? 0),
    address: r.address,
    imageUri: r.imageUri,
    imageDigest: r.imageDigest,
    resources: { cpuMillis: r.cpuMillis, memoryBytes: BigInt(r.memoryBytes), gpu: r.gpu },
    env: r.env,
    secrets: r.secrets.map((s) => ({ kind: s.kind, name: s.name })),
    volumes: r.volumes,
    port: r.port,
    entrypoint: r.entrypoint,
    sandboxId: r.sandboxId,
    ...(r.exitCode === undefined ? {} : { exitCode: r.exitCode }),
  };
}

/** Decodes a run request's spec (shape only; the manager validates values). */
function runInputOf(spec: ContainerSpec | undefined): RunInput {
  if (!spec) throw invalidArgument("spec", "required");
  const image = spec.image?.source;
  const secrets = spec.secrets.map((s, i): SecretSourceInput => {
    const src = s.source;
    switch (src.case) {
      case "secret":
        return { kind: "secret", name: src.value.name };
      case "integration":
        return { kind: "integration", name: src.value.name, keys: src.value.keys };
      case "localEnv":
        return { kind: "local_env", name: src.value.name, value: src.value.value };
      default:
        throw invalidArgument(`spec.secrets[${i}]`, "no source set", "secret, integration or local_env");
    }
  });
  return {
    name: spec.name,
    image:
      image?.case === "uri"
        ? { kind: "uri", uri: image.value }
        : image?.case === "spec"
          ? { kind: "spec", spec: image.value }
          : undefined,
    cpu: spec.cpu,
    memory: spec.memory,
    gpu: spec.gpu,
    env: { ...spec.env },
    secrets,
    volumes: spec.volumes.map((v) => ({ name: v.name, mountPath: v.mountPath, readOnly: v.readOnly })),
    port: spec.port,
    entrypoint: spec.entrypoint,
    upload: spec.upload
      ? {
          volumeName: spec.upload.volumeName,
          targets: spec.upload.targets.map((t) => ({ source: t.source, target: t.target })),
        }
      : undefined,
  };
}

type RefMessage = { ref: { case: "id" | "name"; value: string } | { case: undefined; value?: undefined } };

/** A container reference from a request's `ref` oneof, validated. */
function refOf(req: RefMessage): ContainerRef {
  switch (req.ref.case) {
    case "id":
      return { id: checkContainerId(req.ref.value, "id") };
    case "name":
      return { name: checkContainerName(req.ref.value, "name") };
    default:
      throw invalidArgument("ref", "required", "an id or a name");
  }
}

/** The gRPC ContainerService over a {@link ContainerManager}. */
export function containerServiceImpl(
  manager: ContainerManager,
  metrics: ServerMetrics,
): ServiceImpl<typeof ContainerService> {
  return {
    async *runContainer(req, ctx) {
      for await (const e of manager.run(ctx.environment, runInputOf(req.spec), ctx.signal)) {
        if (e.kind === "build_log") yield { event: { case: "buildLog", value: e.log } };
        else yield { event: { case: "container", value: containerToWire(e.container) } };
      }
    },

    async createContainer() {
      throw new ChalkError(
        Code.Unimplemented,
        "CreateContainer: not served by this server yet; use RunContainer",
      );
    },

    startContainer() {
      throw new ChalkError(
        Code.Unimplemented,
        "StartContainer: not served by this server yet; use RunContainer",
      );
    },

    async getContainer(req, ctx) {
      return { container: containerToWire(manager.find(ctx.environment, refOf(req))) };
    },

    async listContainers(req, ctx) {
      if (req.limit > 1000) throw invalidArgument("limit", `${req.limit} is too large`, "0 (100) to 1000");
      const status = req.status === ContainerStatus.UNSPECIFIED ? undefined : statusFromWire.get(req.status);
      if (req.status !== ContainerStatus.UNSPECIFIED && !status) {
        throw invalidArgument("status", `${req.status} is not a container status`);
      }
      const list = manager.list(ctx.environment, { ...(status ? { status } : {}), limit: req.limit || 100 });
      return { containers: list.map(containerToWire) };
    },

    async stopContainer(req, ctx) {
      const ref = refOf(req);
      const grace = checkSeconds(
        req.gracePeriodSeconds,
        "grace_period_seconds",
        CONTAINER_LIMITS.gracePeriodSeconds,
      );
      return { container: containerToWire(await manager.stop(ctx.environment, ref, grace ?? 0)) };
    },

    async execContainer(req, ctx) {
      const ref = refOf(req);
      const command = checkCommand(req.command, "command");
      const timeoutSecs = checkSeconds(req.timeoutSecs, "timeout_secs", CONTAINER_LIMITS.execTimeoutSecs);
      if (req.stdin.byteLength > CONTAINER_LIMITS.execStdinBytes) {
        throw invalidArgument(
          "stdin",
          `${req.stdin.byteLength} bytes; at most ${CONTAINER_LIMITS.execStdinBytes}`,
        );
      }
      const env = checkEnv({ ...req.env }, "env");
      if (req.workdir && !req.workdir.startsWith("/")) {
        throw invalidArgument("workdir", `${JSON.stringify(req.workdir.slice(0, 80))} is not absolute`);
      }
      const began = performance.now();
      try {
        const { stdout, stderr, exit } = await manager.exec(ctx.environment, ref, command, {
          ...(timeoutSecs ? { timeoutSecs } : {}),
          stdin: req.stdin,
          env,
          ...(req.workdir ? { workdir: req.workdir } : {}),
        });
        metrics.execs.inc({ result: exit.timedOut ? "timeout" : "ok" });
        return {
          stdout,
          stderr,
          ...(exit.exitCode === null ? {} : { exitCode: exit.exitCode }),
          signal: exit.signal ? signalNumber(exit.signal) : 0,
          timedOut: exit.timedOut,
        };
      } catch (err) {
        metrics.execs.inc({ result: "error" });
        throw err;
      } finally {
        metrics.execSeconds.observe((performance.now() - began) / 1000);
      }
    },

    async *containerLogs(req, ctx) {
      for await (const data of manager.logs(ctx.environment, refOf(req), req.follow, ctx.signal)) {
        yield { data };
      }
    },
  };
}
