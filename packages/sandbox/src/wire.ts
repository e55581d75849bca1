import type { MessageInitShape } from "@bufbuild/protobuf";
import { invalidArgument } from "@chalk/core";
import {
  type ExitStatus,
  type ExitStatusSchema,
  type SandboxInfo as SandboxInfoMessage,
  type SandboxInfoSchema,
  type SandboxSpec,
  type SandboxSpecSchema,
  SandboxState as SandboxStateEnum,
} from "@chalk/proto/sandbox/v1";
import { signalName, signalNumber } from "./signals.js";
import type { ProcessExit, SandboxCreateOptions, SandboxInfo, SandboxState } from "./types.js";

/** Options that name host paths: in-process runtimes take them; the wire never carries them. */
export const HOST_PATH_OPTIONS = ["rootfs", "mounts", "logPath", "writableLayerDir"] as const;

/**
 * Throws invalid_argument when `o` names a host path (`rootfs`, `mounts`, `logPath`,
 * `writableLayerDir`): a Chalk server takes none from a client. `prefix` names the message's field.
 */
export function refuseHostPaths(
  o: Partial<Record<(typeof HOST_PATH_OPTIONS)[number], unknown>>,
  prefix = "",
): void {
  for (const k of HOST_PATH_OPTIONS) {
    const v = o[k];
    if (v === undefined || v === "" || (Array.isArray(v) && v.length === 0)) continue;
    throw invalidArgument(
      `${prefix}${k}`,
      "a Chalk server takes no host path from a client",
      "an image reference in `image` (volumes and kept logs: use a Container)",
    );
  }
}

/** Converts create options to the wire spec (the options name an image; host paths are refused). */
export function specToWire(o: SandboxCreateOptions): MessageInitShape<typeof SandboxSpecSchema> {
  refuseHostPaths(o);
  return {
    image: o.image ?? "",
    command: o.command ? [...o.command] : [],
    env: o.env ?? {},
    workdir: o.workdir ?? "",
    resources: { cpu: o.cpu ?? "", memory: o.memory ?? "", pids: o.pids ?? 0, disk: o.disk ?? "" },
    ...(o.init === undefined ? {} : { init: o.init }),
    network: o.network ? { ports: o.network === true ? [] : [...(o.network.ports ?? [])] } : undefined,
    labels: o.labels ?? {},
    id: o.id ?? "",
  };
}

/**
 * Converts a wire spec back to create options (empty fields become absent). A spec that names a
 * host path (`rootfs`, `mounts`, `log_path`) is refused with invalid_argument before any work.
 */
export function specFromWire(s: SandboxSpec): SandboxCreateOptions {
  refuseHostPaths({ rootfs: s.rootfs, mounts: s.mounts, logPath: s.logPath }, "spec.");
  if (!s.image)
    throw invalidArgument("spec.image", "required", "an image reference, as a Container takes it");
  const o: SandboxCreateOptions = { image: s.image };
  if (s.command.length > 0) o.command = [...s.command];
  if (Object.keys(s.env).length > 0) o.env = { ...s.env };
  if (s.workdir) o.workdir = s.workdir;
  if (s.resources?.cpu) o.cpu = s.resources.cpu;
  if (s.resources?.memory) o.memory = s.resources.memory;
  if (s.resources?.pids) o.pids = s.resources.pids;
  if (s.resources?.disk) o.disk = s.resources.disk;
  if (s.init !== undefined) o.init = s.init;
  if (s.network) o.network = { ports: [...s.network.ports] };
  if (Object.keys(s.labels).length > 0) o.labels = { ...s.labels };
  if (s.id) o.id = s.id;
  return o;
}

const stateToWire: Record<SandboxState, SandboxStateEnum> = {
  created: SandboxStateEnum.CREATED,
  running: SandboxStateEnum.RUNNING,
  stopped: SandboxStateEnum.STOPPED,
};

/** Converts sandbox info to the wire. */
export function infoToWire(i: SandboxInfo): MessageInitShape<typeof SandboxInfoSchema> {
  return {
    id: i.id,
    state: stateToWire[i.state],
    createdAtMs: BigInt(i.createdAt.getTime()),
    labels: i.labels,
    address: i.address ?? "",
    hostPid: i.hostPid ?? 0,
    resources: {
      cpu: i.resources.cpu ?? "",
      memory: i.resources.memory ?? "",
      pids: i.resources.pids ?? 0,
      disk: i.resources.disk ?? "",
    },
  };
}

/** Converts wire sandbox info back. */
export function infoFromWire(m: SandboxInfoMessage): SandboxInfo {
  const state: SandboxState =
    m.state === SandboxStateEnum.RUNNING
      ? "running"
      : m.state === SandboxStateEnum.CREATED
        ? "created"
        : "stopped";
  return {
    id: m.id,
    state,
    createdAt: new Date(Number(m.createdAtMs)),
    labels: { ...m.labels },
    address: m.address || undefined,
    hostPid: m.hostPid || undefined,
    resources: {
      cpu: m.resources?.cpu || undefined,
      memory: m.resources?.memory || undefined,
      pids: m.resources?.pids || undefined,
      disk: m.resources?.disk || undefined,
    },
  };
}

/** Converts a process exit to the wire. */
export function exitToWire(e: ProcessExit): MessageInitShape<typeof ExitStatusSchema> {
  return {
    exitCode: e.exitCode ?? undefined,
    signal: e.signal ? signalNumber(e.signal) : 0,
    timedOut: e.timedOut,
    oomKilled: e.oomKilled,
  };
}

/** Converts a wire exit back. */
export function exitFromWire(m: ExitStatus | undefined): ProcessExit {
  return {
    exitCode: m?.exitCode ?? null,
    signal: m?.signal ? signalName(m.signal) : null,
    timedOut: m?.timedOut ?? false,
    oomKilled: m?.oomKilled ?? false,
  };
}
