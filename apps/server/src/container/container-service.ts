import { invalidArgument } from "@chalk/core";
import { type ContainerService, ContainerStatus } from "@chalk/proto/container/v1";
import type { ServiceImpl } from "@chalk/rpc";
import { signalNumber } from "@chalk/sandbox";
import {
  CONTAINER_DEFAULTS,
  CONTAINER_LIMITS,
  checkCommand,
  checkContainerId,
  checkContainerName,
  checkEnv,
  checkSeconds,
  containerSpecFromWire,
  statusFromWire,
} from "@chalk/spec";
import type { ContainerRef } from "../backend/container-records.js";
import type { ServerMetrics } from "../metrics.js";
import { containerToWire } from "./container-wire.js";
import type { Containers } from "./containers.js";
import { portForward } from "./port-forward.js";
import type { RunEvent } from "./run-events.js";

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

/** The run deadline of a request, in seconds (0: the default). */
function readyTimeoutOf(req: { readyTimeoutSecs: number }): number {
  return (
    checkSeconds(
      req.readyTimeoutSecs === 0 ? undefined : req.readyTimeoutSecs,
      "ready_timeout_secs",
      CONTAINER_LIMITS.readyTimeoutSecs,
    ) ?? CONTAINER_DEFAULTS.readyTimeoutSecs
  );
}

async function* toWire(events: AsyncIterable<RunEvent>) {
  for await (const e of events) {
    if (e.kind === "build_log") yield { event: { case: "buildLog" as const, value: e.log } };
    else yield { event: { case: "container" as const, value: containerToWire(e.container) } };
  }
}

/** The gRPC ContainerService over {@link Containers}: decodes and validates, then delegates. */
export function containerServiceImpl(
  containers: Containers,
  metrics: ServerMetrics,
): ServiceImpl<typeof ContainerService> {
  return {
    async *runContainer(req, ctx) {
      const spec = containerSpecFromWire(req.spec);
      yield* toWire(containers.run(ctx.environment, spec, readyTimeoutOf(req)));
    },

    async createContainer(req, ctx) {
      const spec = containerSpecFromWire(req.spec);
      const record = await containers.accept(ctx.environment, spec, readyTimeoutOf(req), "create");
      return { container: containerToWire(record) };
    },

    async *startContainer(req, ctx) {
      yield* toWire(containers.start(ctx.environment, refOf(req)));
    },

    async getContainer(req, ctx) {
      return { container: containerToWire(await containers.find(ctx.environment, refOf(req))) };
    },

    async listContainers(req, ctx) {
      if (req.limit > CONTAINER_LIMITS.listLimit) {
        throw invalidArgument(
          "limit",
          `${req.limit} is too large`,
          `0 (${CONTAINER_DEFAULTS.listLimit}) to ${CONTAINER_LIMITS.listLimit}`,
        );
      }
      const status = req.status === ContainerStatus.UNSPECIFIED ? undefined : statusFromWire(req.status);
      if (req.status !== ContainerStatus.UNSPECIFIED && !status) {
        throw invalidArgument("status", `${req.status} is not a container status`);
      }
      const list = await containers.list(ctx.environment, {
        ...(status ? { status } : {}),
        limit: req.limit || CONTAINER_DEFAULTS.listLimit,
      });
      return { containers: list.map(containerToWire) };
    },

    async stopContainer(req, ctx) {
      const ref = refOf(req);
      const grace = checkSeconds(
        req.gracePeriodSeconds,
        "grace_period_seconds",
        CONTAINER_LIMITS.gracePeriodSeconds,
      );
      return { container: containerToWire(await containers.stop(ctx.environment, ref, grace ?? 0)) };
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
        const { stdout, stderr, exit } = await containers.exec(ctx.environment, ref, command, {
          ...(timeoutSecs ? { timeoutSecs } : {}),
          stdin: req.stdin,
          env,
          ...(req.workdir ? { workdir: req.workdir } : {}),
          signal: ctx.signal,
        });
        metrics.execs.inc({ result: exit.timedOut ? "timeout" : "ok" });
        return {
          stdout,
          stderr,
          ...(exit.exitCode === null ? {} : { exitCode: exit.exitCode }),
          signal: exit.signal ? signalNumber(exit.signal) : 0,
          timedOut: exit.timedOut,
          oomKilled: exit.oomKilled,
        };
      } catch (err) {
        metrics.execs.inc({ result: "error" });
        throw err;
      } finally {
        metrics.execSeconds.observe((performance.now() - began) / 1000);
      }
    },

    portForward(requests, ctx) {
      return portForward(containers, metrics, requests, ctx);
    },

    async *containerLogs(req, ctx) {
      const record = await containers.find(ctx.environment, refOf(req));
      for await (const data of containers.logs(record.id, req.follow, ctx.signal, req.tailLines)) {
        metrics.bytesStreamed.inc({ kind: "logs" }, data.byteLength);
        yield { data };
      }
    },
  };
}
