import type { MessageInitShape } from "@bufbuild/protobuf";
import { type GpuRequest, invalidArgument } from "@chalk/core";
import { decodeImageSpec, parseReference } from "@chalk/image";
import type {
  ContainerSpec as ContainerSpecMessage,
  ContainerSpecSchema,
  Readiness as ReadinessMessage,
} from "@chalk/proto/container/v1";
import type { SecretSource } from "@chalk/proto/secrets/v1";
import { checkSecretName, checkSecretValue, type SecretKind } from "@chalk/secrets";
import { checkVolumeName, parseVolumePath } from "@chalk/volume";
import {
  checkCommand,
  checkContainerName,
  checkEnv,
  checkMountPath,
  checkPort,
  checkResources,
  checkSeconds,
} from "./checks.js";
import { CONTAINER_DEFAULTS, CONTAINER_LIMITS } from "./limits.js";

/** Which image to run: a built image's reference, or a binary `chalk.image.v1.ImageSpec`. */
export type ImageSource = { kind: "uri"; uri: string } | { kind: "spec"; spec: Uint8Array };

/**
 * A secret to inject, as a run carries it. `kind` names the source as `chalk.secrets.v1.SecretSource`
 * does (`secret`, `integration`, `localEnv` = `local_env`), the same as `Secret.kind`. A `localEnv`
 * source carries the value the client captured.
 */
export type SecretSourceSpec =
  | { kind: "secret"; name: string }
  | { kind: "integration"; name: string; keys: string[] }
  | { kind: "localEnv"; name: string; value: string };

/** A reference to a secret without any value, as records and `ContainerInfo` show it. */
export interface SecretRef {
  /** Where it comes from. */
  kind: SecretKind;
  /** The secret's, integration's or local variable's name. */
  name: string;
  /** For an integration: only these keys (empty or absent: every key). */
  keys?: string[];
}

/** A named volume mounted into a container. */
export interface VolumeMountSpec {
  /** Volume name in the container's environment; it must exist. */
  name: string;
  /** Absolute, normalized path inside the container. */
  mountPath: string;
  /** Mount read-only. */
  readOnly: boolean;
}

/** The temporary volume of a run's local files and the directories of it mounted into the container. */
export interface UploadSpec {
  /** The upload volume's name. */
  volumeName: string;
  /** Each directory of the volume (`tree/app`) mounted read-only at its absolute target (`/app`). */
  targets: { source: string; target: string }[];
}

/**
 * When a started container counts as ready (Running): once `port` accepts a TCP connection, or once
 * a line of the entrypoint's output contains `logLine`; for at most `timeoutSecs`.
 */
export type ReadinessSpec =
  | { kind: "port"; port: number; timeoutSecs: number }
  | { kind: "logLine"; logLine: string; timeoutSecs: number };

/** A container request, validated: what the SDK sends and the server runs. */
export interface ContainerSpec {
  /** Unique among the environment's active containers (a DNS label). */
  name: string;
  /** The image. */
  image: ImageSource;
  /** CPU as requested (`"500m"`), or undefined for the environment's default. */
  cpu: string | undefined;
  /** Memory as requested (`"2Gi"`), or undefined for the environment's default. */
  memory: string | undefined;
  /** GPU as requested (`"nvidia-l4:1"`), or undefined for none. */
  gpu: string | undefined;
  /** The requested resources, parsed: millicores, bytes, GPU type and count. */
  resources: { cpuMillis: number | undefined; memoryBytes: number | undefined; gpu: GpuRequest | undefined };
  /** Plaintext environment variables. */
  env: Record<string, string>;
  /** Secrets injected as environment variables. */
  secrets: SecretSourceSpec[];
  /** Named volumes. */
  volumes: VolumeMountSpec[];
  /** The port the host reaches, or undefined for no network. */
  port: number | undefined;
  /** The main process; empty: the image's, else an idle process. */
  entrypoint: string[];
  /** The run's uploaded local files, if any. */
  upload: UploadSpec | undefined;
  /** When the started container counts as ready, if not at once. */
  readiness: ReadinessSpec | undefined;
}

const utf8 = new TextEncoder();

/** Checks an image reference with the one rule `@chalk/image` parses references by. */
export function checkImageReference(reference: unknown, field = "image"): string {
  parseReference(reference, field);
  return reference as string;
}

/** Checks an image source: a parseable reference, or a spec of 1 byte to 1 MiB that decodes. */
export function checkImageSource(source: ImageSource | undefined, field: string): ImageSource {
  if (!source) throw invalidArgument(field, "required", "an image spec or an image reference");
  if (source.kind === "uri") {
    checkImageReference(source.uri, `${field}.uri`);
    return source;
  }
  const n = source.spec.byteLength;
  if (n === 0 || n > CONTAINER_LIMITS.imageSpecBytes) {
    throw invalidArgument(
      `${field}.spec`,
      `${n} bytes`,
      `1 byte to ${CONTAINER_LIMITS.imageSpecBytes} bytes`,
    );
  }
  decodeImageSpec(source.spec, `${field}.spec`);
  return source;
}

/**
 * Checks a readiness request against the container's port: exactly one of `port` (which must be
 * the container's port) and `logLine` (1 to 1024 bytes, one line), and a timeout (default 60 s).
 */
export function checkReadiness(
  value: { port?: unknown; logLine?: unknown; timeoutSecs?: unknown } | undefined,
  containerPort: number | undefined,
  field = "readiness",
): ReadinessSpec | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object") throw invalidArgument(field, "expected { port } or { logLine }");
  const timeoutSecs =
    checkSeconds(
      value.timeoutSecs === 0 ? undefined : value.timeoutSecs,
      `${field}.timeoutSecs`,
      CONTAINER_LIMITS.readinessTimeoutSecs,
    ) ?? CONTAINER_DEFAULTS.readinessTimeoutSecs;
  const hasPort = value.port !== undefined && value.port !== null;
  const hasLine = value.logLine !== undefined && value.logLine !== null;
  if (hasPort === hasLine) {
    throw invalidArgument(field, "expected exactly one check", '{ port: 8080 } or { logLine: "ready" }');
  }
  if (hasPort) {
    const port = checkPort(value.port, `${field}.port`);
    if (port === undefined || port !== containerPort) {
      throw invalidArgument(
        `${field}.port`,
        `${String(value.port)} is not the container's port`,
        containerPort ? String(containerPort) : "a port; give the container a port first",
      );
    }
    return { kind: "port", port, timeoutSecs };
  }
  const line = value.logLine;
  if (typeof line !== "string" || line === "" || /[\n\r\0]/.test(line)) {
    throw invalidArgument(
      `${field}.logLine`,
      "expected text of one line",
      "a non-empty string without newlines",
    );
  }
  if (utf8.encode(line).length > CONTAINER_LIMITS.readinessLogLineBytes) {
    throw invalidArgument(`${field}.logLine`, `longer than ${CONTAINER_LIMITS.readinessLogLineBytes} bytes`);
  }
  return { kind: "logLine", logLine: line, timeoutSecs };
}

/** Checks secret sources: at most 256, valid names and keys, local values within the secret limits. */
export function checkSecretSources(
  secrets: readonly SecretSourceSpec[],
  field = "secrets",
): SecretSourceSpec[] {
  if (secrets.length > CONTAINER_LIMITS.secrets) {
    throw invalidArgument(field, `${secrets.length} secrets; at most ${CONTAINER_LIMITS.secrets}`);
  }
  secrets.forEach((s, i) => {
    const f = `${field}[${i}]`;
    checkSecretName(s.name, `${f}.name`);
    if (s.kind === "integration") {
      for (const [j, k] of s.keys.entries()) checkSecretName(k, `${f}.keys[${j}]`);
    }
    if (s.kind === "localEnv") checkSecretValue(s.value, `${f}.value`);
  });
  return [...secrets];
}

/** The reference of a secret source: what records keep and `ContainerInfo` shows (never a value). */
export function secretRefOf(s: SecretSourceSpec): SecretRef {
  return s.kind === "integration" && s.keys.length > 0
    ? { kind: s.kind, name: s.name, keys: [...s.keys] }
    : { kind: s.kind, name: s.name };
}

function secretSourceFromWire(s: SecretSource, field: string): SecretSourceSpec {
  const src = s.source;
  switch (src.case) {
    case "secret":
      return { kind: "secret", name: src.value.name };
    case "integration":
      return { kind: "integration", name: src.value.name, keys: [...src.value.keys] };
    case "localEnv":
      return { kind: "localEnv", name: src.value.name, value: src.value.value };
    default:
      throw invalidArgument(field, "no source set", "secret, integration or local_env");
  }
}

function readinessFromWire(r: ReadinessMessage | undefined, port: number | undefined, field: string) {
  if (!r) return undefined;
  const c = r.check;
  if (c.case === undefined) throw invalidArgument(field, "no check set", "port or log_line");
  return checkReadiness(
    c.case === "port"
      ? { port: c.value, timeoutSecs: r.timeoutSecs }
      : { logLine: c.value, timeoutSecs: r.timeoutSecs },
    port,
    field,
  );
}

/**
 * Decodes and validates a wire `ContainerSpec` completely, without I/O: every problem is
 * invalid_argument naming the wire field (`spec.volumes[0].mount_path`). What needs the server's
 * state (volumes and secrets that exist, capacity, the environment's defaults) is checked there.
 */
export function containerSpecFromWire(spec: ContainerSpecMessage | undefined, field = "spec"): ContainerSpec {
  if (!spec) throw invalidArgument(field, "required");
  const name = checkContainerName(spec.name, `${field}.name`);
  const src = spec.image?.source;
  const image = checkImageSource(
    src?.case === "uri"
      ? { kind: "uri", uri: src.value }
      : src?.case === "spec"
        ? { kind: "spec", spec: src.value }
        : undefined,
    `${field}.image`,
  );
  const resources = checkResources({ cpu: spec.cpu, memory: spec.memory, gpu: spec.gpu }, `${field}.`);
  const env = checkEnv({ ...spec.env }, `${field}.env`);
  const secrets = checkSecretSources(
    spec.secrets.map((s, i) => secretSourceFromWire(s, `${field}.secrets[${i}]`)),
    `${field}.secrets`,
  );
  if (spec.volumes.length > CONTAINER_LIMITS.volumes) {
    throw invalidArgument(
      `${field}.volumes`,
      `${spec.volumes.length} volumes; at most ${CONTAINER_LIMITS.volumes}`,
    );
  }
  const targets = new Set<string>();
  const claim = (path: string, f: string) => {
    if (targets.has(path)) throw invalidArgument(f, `${JSON.stringify(path)} is mounted twice`);
    targets.add(path);
  };
  const volumes = spec.volumes.map((v, i) => {
    const f = `${field}.volumes[${i}]`;
    const mount: VolumeMountSpec = {
      name: checkVolumeName(v.name, `${f}.name`),
      mountPath: checkMountPath(v.mountPath, `${f}.mount_path`),
      readOnly: v.readOnly,
    };
    claim(mount.mountPath, `${f}.mount_path`);
    return mount;
  });
  let upload: UploadSpec | undefined;
  if (spec.upload) {
    const f = `${field}.upload`;
    const volumeName = checkVolumeName(spec.upload.volumeName, `${f}.volume_name`);
    if (spec.upload.targets.length > CONTAINER_LIMITS.uploadTargets) {
      throw invalidArgument(`${f}.targets`, `more than ${CONTAINER_LIMITS.uploadTargets}`);
    }
    upload = {
      volumeName,
      targets: spec.upload.targets.map((t, i) => {
        const source = parseVolumePath(t.source, `${f}.targets[${i}].source`).join("/");
        const target = checkMountPath(t.target, `${f}.targets[${i}].target`);
        claim(target, `${f}.targets[${i}].target`);
        return { source, target };
      }),
    };
  }
  const port = checkPort(spec.port, `${field}.port`);
  const entrypoint = spec.entrypoint.length > 0 ? checkCommand(spec.entrypoint, `${field}.entrypoint`) : [];
  const readiness = readinessFromWire(spec.readiness, port, `${field}.readiness`);
  const opt = (s: string) => (s === "" ? undefined : s);
  return {
    name,
    image,
    cpu: opt(spec.cpu),
    memory: opt(spec.memory),
    gpu: opt(spec.gpu),
    resources,
    env,
    secrets,
    volumes,
    port,
    entrypoint: [...entrypoint],
    upload,
    readiness,
  };
}

/** The wire form of a readiness check. */
export function readinessToWire(
  r: ReadinessSpec | undefined,
): MessageInitShape<typeof ContainerSpecSchema>["readiness"] {
  if (!r) return undefined;
  return {
    check: r.kind === "port" ? { case: "port", value: r.port } : { case: "logLine", value: r.logLine },
    timeoutSecs: r.timeoutSecs,
  };
}

/** The wire form of a spec. A `localEnv` secret carries its value: send it only to the server. */
export function containerSpecToWire(spec: ContainerSpec): MessageInitShape<typeof ContainerSpecSchema> {
  return {
    name: spec.name,
    image: {
      source:
        spec.image.kind === "uri"
          ? { case: "uri", value: spec.image.uri }
          : { case: "spec", value: spec.image.spec },
    },
    cpu: spec.cpu ?? "",
    memory: spec.memory ?? "",
    gpu: spec.gpu ?? "",
    env: { ...spec.env },
    secrets: spec.secrets.map((s) => ({
      source:
        s.kind === "secret"
          ? { case: "secret", value: { name: s.name } }
          : s.kind === "integration"
            ? { case: "integration", value: { name: s.name, keys: [...s.keys] } }
            : { case: "localEnv", value: { name: s.name, value: s.value } },
    })),
    volumes: spec.volumes.map((v) => ({ ...v })),
    port: spec.port ?? 0,
    entrypoint: [...spec.entrypoint],
    ...(spec.upload
      ? {
          upload: { volumeName: spec.upload.volumeName, targets: spec.upload.targets.map((t) => ({ ...t })) },
        }
      : {}),
    ...(spec.readiness ? { readiness: readinessToWire(spec.readiness) } : {}),
  };
}
