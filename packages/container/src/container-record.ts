import { ChalkError, Code, invalidArgument } from "@chalk/core";
import { type ContainerInfo as ContainerInfoMessage, ContainerService } from "@chalk/proto/container/v1";
import { createClient, defaultTransport } from "@chalk/rpc";
import type { SecretKind } from "@chalk/secrets";
import { checkContainerId, checkContainerName } from "@chalk/spec";
import type { ContainerConnectOptions, ContainerInfo } from "./container-options.js";
import { infoOf } from "./container-run.js";

/** Where a secret of a container comes from, as the server records it; never its value. */
export interface ContainerSecretRef {
  /** `"secret"` (`Secret.fromEnv`), `"integration"` or `"localEnv"` (`Secret.fromLocalEnv`): `Secret.kind`. */
  kind: SecretKind;
  /** The secret's or integration's name. */
  name: string;
  /** For an integration: the keys injected (absent: every key). */
  keys?: string[];
}

/** `SecretRef.kind` on the wire names `SecretSource`'s fields in `.proto` text (`local_env`). */
const SECRET_KINDS: Record<string, SecretKind> = {
  secret: "secret",
  integration: "integration",
  local_env: "localEnv",
};

/** A named volume mounted into a container. */
export interface ContainerVolumeMount {
  /** Volume name. */
  name: string;
  /** Absolute path inside the container. */
  mountPath: string;
  /** Mounted read-only. */
  readOnly: boolean;
}

/**
 * Everything the server records about a container: its {@link ContainerInfo} plus what it was
 * created with. What `chalk ps` and `chalk inspect` show. Secret values never appear here.
 */
export interface ContainerRecord extends ContainerInfo {
  /** The container id (a UUID). */
  id: string;
  /** The container name. */
  name: string;
  /** Where the container's image lives. */
  imageUri: string;
  /** `sha256:…` of the image spec; empty for an image given by reference. */
  imageDigest: string;
  /** Plaintext environment variables it was created with. */
  env: Record<string, string>;
  /** Its secrets, by kind and name. */
  secrets: ContainerSecretRef[];
  /** Named volumes mounted into it. */
  volumes: ContainerVolumeMount[];
  /** The port the host reaches at `address`; undefined without one. */
  port: number | undefined;
  /** The main process; empty when the image's (or an idle process) runs. */
  entrypoint: string[];
}

/** Options for {@link listContainers}. */
export interface ContainerListOptions extends ContainerConnectOptions {
  /** At most this many containers, newest first: 1-1000. Default 1000. */
  limit?: number;
}

/** @internal A record from the wire. */
export function recordOf(m: ContainerInfoMessage): ContainerRecord {
  return {
    id: m.id,
    name: m.name,
    ...infoOf(m),
    imageUri: m.imageUri,
    imageDigest: m.imageDigest,
    env: { ...m.env },
    secrets: m.secrets.map((s) => ({
      kind: SECRET_KINDS[s.kind] ?? (s.kind as SecretKind),
      name: s.name,
      ...(s.keys.length > 0 ? { keys: [...s.keys] } : {}),
    })),
    volumes: m.volumes.map((v) => ({ name: v.name, mountPath: v.mountPath, readOnly: v.readOnly })),
    port: m.port || undefined,
    entrypoint: [...m.entrypoint],
  };
}

/**
 * Lists the environment's containers, newest first, whatever their status (running, stopped,
 * failed, finished).
 *
 * @example
 * ```ts
 * import { listContainers } from "@chalk/container";
 * for (const c of await listContainers()) console.log(c.name, c.status, c.address ?? "");
 * ```
 */
export async function listContainers(options: ContainerListOptions = {}): Promise<ContainerRecord[]> {
  const limit = options.limit ?? 1000;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw invalidArgument(
      "limit",
      `${String(limit).slice(0, 40)} is out of range`,
      "an integer from 1 to 1000",
    );
  }
  const transport = options.transport ?? defaultTransport(options);
  const res = await createClient(ContainerService, transport).listContainers({ limit });
  return res.containers.map(recordOf);
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The record of one container, by id (a UUID) or name (the running one of that name, else the
 * newest). not_found when the environment has none.
 *
 * @example
 * ```ts
 * import { describeContainer } from "@chalk/container";
 * const c = await describeContainer("hello-container");
 * console.log(c.status, c.imageUri, c.volumes);
 * ```
 */
export async function describeContainer(
  nameOrId: string,
  options: ContainerConnectOptions = {},
): Promise<ContainerRecord> {
  const ref =
    typeof nameOrId === "string" && uuid.test(nameOrId)
      ? { case: "id" as const, value: checkContainerId(nameOrId) }
      : { case: "name" as const, value: checkContainerName(nameOrId) };
  const transport = options.transport ?? defaultTransport(options);
  const res = await createClient(ContainerService, transport).getContainer({ ref });
  if (!res.container) throw new ChalkError(Code.Internal, "the server sent no container");
  return recordOf(res.container);
}
