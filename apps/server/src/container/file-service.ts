import { posix } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import {
  type ContainerFileService,
  type FileContainerRef,
  FileEventType,
  type FileStatSchema,
  FileType,
} from "@chalk/proto/container/v1/files";
import type { ServiceImpl } from "@chalk/rpc";
import { checkContainerId, checkContainerName } from "@chalk/spec";
import type { BackendContainer } from "../backend/compute-backend.js";
import { requireCapability } from "../backend/compute-backend.js";
import type { ContainerRef } from "../backend/container-records.js";
import { unimplemented } from "../backend/unimplemented.js";
import type { ServerMetrics } from "../metrics.js";
import type { Containers } from "./containers.js";
import { type AgentStat, FsAgent } from "./fs-agent.js";

/** The longest path the files API takes, in bytes (Linux's PATH_MAX). */
const MAX_PATH_BYTES = 4096;

/** An absolute, normalized container path; invalid_argument naming `field` otherwise. */
export function checkContainerPath(path: string, field: string): string {
  const accepted = 'an absolute, normalized path such as "/app/data.txt"';
  if (path === "") throw invalidArgument(field, "required", accepted);
  if (!path.startsWith("/") || posix.normalize(path) !== path || (path.length > 1 && path.endsWith("/"))) {
    throw invalidArgument(
      field,
      `${JSON.stringify(path.slice(0, 200))} is not absolute and normalized`,
      accepted,
    );
  }
  if (path.includes("\0")) throw invalidArgument(field, "contains NUL", accepted);
  if (Buffer.byteLength(path) > MAX_PATH_BYTES)
    throw invalidArgument(field, `longer than ${MAX_PATH_BYTES} bytes`, accepted);
  return path;
}

function refOf(c: FileContainerRef | undefined): ContainerRef {
  switch (c?.ref.case) {
    case "id":
      return { id: checkContainerId(c.ref.value, "container.id") };
    case "name":
      return { name: checkContainerName(c.ref.value, "container.name") };
    default:
      throw invalidArgument("container", "required", "an id or a name");
  }
}

const TYPES: Record<AgentStat["type"], FileType> = {
  file: FileType.FILE,
  directory: FileType.DIRECTORY,
  symlink: FileType.SYMLINK,
  other: FileType.OTHER,
};

/** A whole number from the agent, or 0 (its output comes from inside the container: never trusted). */
const whole = (n: unknown, max = Number.MAX_SAFE_INTEGER) =>
  typeof n === "number" && Number.isSafeInteger(n) && n >= -max && n <= max ? n : 0;

function statToWire(s: AgentStat | undefined): MessageInitShape<typeof FileStatSchema> {
  if (!s || typeof s !== "object") {
    throw new ChalkError(Code.Unavailable, "the container's files agent sent a malformed answer");
  }
  return {
    name: typeof s.name === "string" ? s.name.slice(0, 4096) : "",
    type: TYPES[s.type] ?? FileType.OTHER,
    size: BigInt(Math.max(0, whole(s.size))),
    mode: Math.max(0, whole(s.mode, 0o7777)),
    modifiedAtMs: BigInt(whole(s.mtimeMs)),
    target: typeof s.target === "string" ? s.target.slice(0, 4096) : "",
  };
}

const EVENTS: Record<string, FileEventType> = {
  create: FileEventType.CREATE,
  modify: FileEventType.MODIFY,
  delete: FileEventType.DELETE,
};

/**
 * The files API over each Running container's files agent (one per container, started on first
 * use, kept while the container runs): {@link FsAgent} over `sandbox.spawn`, so it works on any
 * backend whose containers carry the agent (capability `files`).
 */
export function fileServiceImpl(
  containers: Containers,
  metrics: ServerMetrics,
): ServiceImpl<typeof ContainerFileService> {
  const agents = new WeakMap<BackendContainer, FsAgent>();

  async function agentFor(environment: string, ref: FileContainerRef | undefined): Promise<FsAgent> {
    const r = refOf(ref);
    requireCapability(containers.backend, "files", ["local"]);
    const record = await containers.find(environment, r);
    if (record.status !== "Running") {
      throw new ChalkError(
        Code.FailedPrecondition,
        `container ${JSON.stringify(record.name)} is ${record.status}; the files API needs a Running container`,
      );
    }
    const live = containers.live.get(record.id);
    if (!live)
      throw new ChalkError(
        Code.Unavailable,
        `container ${JSON.stringify(record.name)}: the server does not hold it`,
      );
    const path = live.container.filesAgentPath;
    if (!path) throw unimplemented("files", containers.backend.name, ["local"]);
    let agent = agents.get(live.container);
    if (!agent) {
      agent = new FsAgent(live.container.sandbox, path);
      agents.set(live.container, agent);
    }
    return agent;
  }

  return {
    async *readFile(req, ctx) {
      const path = checkContainerPath(req.path, "path");
      const agent = await agentFor(ctx.environment, req.container);
      for await (const data of agent.read(path, ctx.signal)) {
        metrics.bytesStreamed.inc({ kind: "files" }, data.byteLength);
        yield { data };
      }
    },

    async writeFile(requests, ctx) {
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      if (first.done || first.value.frame.case !== "start") {
        throw invalidArgument("frame", "the first message must be start", "start { container, path, mode }");
      }
      const start = first.value.frame.value;
      const path = checkContainerPath(start.path, "start.path");
      if (start.mode > 0o7777)
        throw invalidArgument("start.mode", `${start.mode} is not a permission mode`, "0 to 0o7777");
      const agent = await agentFor(ctx.environment, start.container);
      async function* chunks() {
        for (;;) {
          const next = await iterator.next();
          if (next.done) return;
          if (next.value.frame.case !== "data") {
            throw invalidArgument(
              "frame",
              `${next.value.frame.case ?? "an empty frame"} after start`,
              "data frames",
            );
          }
          yield next.value.frame.value;
        }
      }
      const stat = await agent.write(path, start.mode || 0o644, chunks());
      return { stat: statToWire(stat) };
    },

    async listFiles(req, ctx) {
      const path = checkContainerPath(req.path, "path");
      const agent = await agentFor(ctx.environment, req.container);
      const a = await agent.call({ op: "list", path });
      return { entries: (Array.isArray(a.entries) ? a.entries : []).map(statToWire) };
    },

    async statFile(req, ctx) {
      const path = checkContainerPath(req.path, "path");
      const agent = await agentFor(ctx.environment, req.container);
      const a = await agent.call({ op: "stat", path });
      return { stat: statToWire(a.stat) };
    },

    async makeDirectory(req, ctx) {
      const path = checkContainerPath(req.path, "path");
      if (req.mode > 0o7777)
        throw invalidArgument("mode", `${req.mode} is not a permission mode`, "0 to 0o7777");
      const agent = await agentFor(ctx.environment, req.container);
      await agent.call({ op: "mkdir", path, parents: req.parents, mode: req.mode || 0o755 });
      return {};
    },

    async removeFile(req, ctx) {
      const path = checkContainerPath(req.path, "path");
      if (path === "/")
        throw invalidArgument("path", "the root directory cannot be removed", "a path below /");
      const agent = await agentFor(ctx.environment, req.container);
      await agent.call({ op: "remove", path, recursive: req.recursive });
      return {};
    },

    async renameFile(req, ctx) {
      const from = checkContainerPath(req.from, "from");
      const to = checkContainerPath(req.to, "to");
      const agent = await agentFor(ctx.environment, req.container);
      await agent.call({ op: "rename", path: from, to });
      return {};
    },

    async *watchFiles(req, ctx) {
      const path = checkContainerPath(req.path, "path");
      const agent = await agentFor(ctx.environment, req.container);
      for await (const e of agent.watch(path, ctx.signal)) {
        if (e.kind === "watching") yield { event: { case: "watching" as const, value: true } };
        else
          yield {
            event: {
              case: "file" as const,
              value: {
                type: EVENTS[e.type] ?? FileEventType.UNSPECIFIED,
                path: typeof e.path === "string" ? e.path.slice(0, 4096) : "",
              },
            },
          };
      }
    },
  };
}
