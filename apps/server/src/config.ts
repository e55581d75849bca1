import { readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ChalkError, parseCpu, parseMemory } from "@chalk/core";
import { checkDiskBytes } from "@chalk/disk";
import { parseReference } from "@chalk/image";
import { DEFAULT_STEP_LIMITS } from "@chalk/image/builder";
import { DEFAULT_MAX_UNARY_READS_PER_CONNECTION, isLoopback } from "@chalk/rpc";
import { z } from "zod";
import { ConfigError } from "./config-error.js";
import { kubernetesSettings, readTls, readTokens } from "./config-readers.js";
import { USAGE } from "./config-usage.js";
import { defaultExecSlotLimits, type ExecSlotLimits } from "./exec-slots.js";
import type { TokenGrant } from "./tokens.js";

export { ConfigError } from "./config-error.js";
export { USAGE } from "./config-usage.js";
export { isLoopback };

/** Default resources of one environment, as Kubernetes quantities. */
export interface EnvironmentDefaults {
  /** CPU cores: `"1"`, `"500m"`. */
  cpu: string;
  /** Memory: `"1Gi"`. */
  memory: string;
}

/** One environment's overrides of the server's defaults (`--environments-file`): each may be absent. */
export type EnvironmentOverrides = { [K in keyof EnvironmentDefaults]?: EnvironmentDefaults[K] | undefined };

/** The server's validated configuration. */
export interface ServerConfig {
  /** `host:port` of the gRPC server. */
  listen: string;
  /** `host:port` of the Prometheus endpoint, or undefined for none. */
  metricsListen: string | undefined;
  /** Absolute directory holding the database, logs, volumes, secrets, images and runsc state. */
  dataDir: string;
  /** The compute backend: `local` (gVisor on this machine) or `kubernetes` (Pods in gVisor). */
  backend: "local" | "kubernetes";
  /** Settings of the `kubernetes` backend (undefined with `local`). */
  kubernetes:
    | {
        /** Absolute path of the kubeconfig (its current context is used). */
        kubeconfig: string;
        /** A Pod's CPU request as a percentage of its limit (100: requests equal limits). */
        cpuRequestPercent: number;
        /** Prefix of the namespaces this server makes (`chalk-`); servers sharing a cluster need their own. */
        namespacePrefix: string;
        /** `runtimeClassName` of every Pod. */
        runtimeClass: string;
        /** The node label whose value is a node's accelerator type. */
        gpuNodeLabel: string;
        /** Talk to `registry` over plain HTTP (a registry on a private test network). */
        registryInsecure: boolean;
      }
    | undefined;
  /** Defaults for environments that `environments` does not name. */
  defaults: EnvironmentDefaults;
  /** Per-environment defaults, from the environments file. */
  environments: Record<string, EnvironmentOverrides>;
  /** OCI registry (`host:port`) for base images and built images, when configured. */
  registry: string | undefined;
  /** Accepted bearer tokens (as digests) and their environments. Empty only with `insecureNoAuth`. */
  tokens: TokenGrant[];
  /** The certificate chain and key (PEM) the server serves TLS with; undefined for plaintext on loopback. */
  tls: { cert: Buffer; key: Buffer } | undefined;
  /** Serve without authentication (only on a loopback address). */
  insecureNoAuth: boolean;
  /** Directory of the image store (layers, unpacked root filesystems); shareable between servers. */
  imagesDir: string;
  /** Image references served from host root filesystems, configured by the operator. */
  rootfsImages: Record<string, string>;
  /** pino log level. */
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** Size bound of one container's log file, in bytes (the newest output is kept). */
  containerLogMaxBytes: number;
  /** Execs running at once across all containers (each is a runsc process); more wait their turn. */
  maxConcurrentExecs: number;
  /**
   * Disk limit of each container's writable layer (its root filesystem's writes, /tmp included), a
   * memory quantity; undefined for none (`--default-disk none`).
   */
  defaultDisk: string | undefined;
  /** Quota of each new volume, in bytes; undefined for none (`--volume-quota none`). */
  volumeQuotaBytes: number | undefined;
  /** Limits of every image build step's sandbox. */
  build: { memory: string; cpu: string; pids: number };
  /**
   * The exec slots' other bounds (per container, per environment, long-lived, the queue), each
   * from its flag when given, else derived from `maxConcurrentExecs` (`defaultExecSlotLimits`).
   */
  execSlots: ExecSlotLimits;
  /** Registries (`host[:port]`) image references may name besides `registry`; no other host is contacted. */
  allowedRegistries: string[];
  /** Finished containers whose logs are kept per environment (the newest); older ones are deleted. */
  finishedLogRetention: number;
  /** Seconds a finished container's log is kept at most (0: no age limit). */
  finishedLogMaxAgeSecs: number;
  /** Unary request messages one connection may have arriving at once (`@chalk/rpc`'s read budget). */
  maxUnaryReadsPerConnection: number;
  /**
   * Absolute path of the runsc binary, or undefined for the pinned build in the cache
   * (`@chalk/sandbox/local`'s `defaultRunscPath()`). It must be the pinned gVisor version.
   */
  runsc: string | undefined;
}

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/, "expected HOST:PORT (e.g. 127.0.0.1:50051)")
  .refine((v) => Number(v.slice(v.lastIndexOf(":") + 1)) <= 65535, "port must be 0 to 65535");

const cpuQuantity = z.string().refine((v) => {
  try {
    parseCpu(v);
    return true;
  } catch {
    return false;
  }
}, 'expected a CPU quantity such as "1", "0.5" or "500m"');

const memoryQuantity = z.string().refine((v) => {
  try {
    parseMemory(v);
    return true;
  } catch {
    return false;
  }
}, 'expected a memory quantity such as "512Mi" or "2Gi"');

/** A disk size (16Mi to 16Ti) as a memory quantity, or "none". */
const diskQuantity = z.string().refine((v) => {
  if (v === "none") return true;
  try {
    checkDiskBytes(parseMemory(v));
    return true;
  } catch {
    return false;
  }
}, 'expected "none" or a size from 16Mi to 16Ti such as "10Gi"');
/** A count of execs (1 to 4096). */
const count = z.coerce.number().int().min(1).max(4096);

const environmentName = /^[a-z0-9][a-z0-9._-]{0,62}$/;

const environmentsSchema = z.record(
  z.string().regex(environmentName, "environment names are 1-63 of a-z, 0-9, '.', '_', '-'"),
  z.strictObject({ cpu: cpuQuantity.optional(), memory: memoryQuantity.optional() }),
);

const configSchema = z.strictObject({
  listen: hostPort,
  metricsListen: hostPort.optional(),
  dataDir: z.string().min(1),
  imagesDir: z.string().min(1).optional(),
  backend: z.string(),
  defaultCpu: cpuQuantity,
  defaultMemory: memoryQuantity,
  environmentsFile: z.string().optional(),
  registry: hostPort.optional(),
  runsc: z
    .string()
    .refine((v) => isAbsolute(v), "expected an absolute path to the pinned runsc")
    .optional(),
  rootfsImages: z.array(
    z
      .string()
      .regex(
        /^[a-z0-9][a-z0-9._/:-]{0,127}=\/.+$/,
        "expected NAME=/absolute/dir (NAME: a-z, 0-9, . _ / : -)",
      ),
  ),
  tlsCert: z.string().min(1).optional(),
  tlsKey: z.string().min(1).optional(),
  insecureNoAuth: z.boolean(),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
  containerLogMaxBytes: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .max(1024 ** 3),
  maxConcurrentExecs: z.coerce.number().int().min(1).max(4096),
  defaultDisk: diskQuantity,
  volumeQuota: diskQuantity,
  buildMemory: memoryQuantity,
  buildCpu: cpuQuantity,
  buildPids: z.coerce.number().int().min(8).max(65_536),
  maxExecsPerContainer: count.optional(),
  maxExecsPerEnvironment: count.optional(),
  maxLongExecsPerContainer: count.optional(),
  maxLongExecsPerEnvironment: count.optional(),
  maxQueuedExecs: z.coerce.number().int().min(0).max(1_000_000).optional(),
  maxQueuedExecsPerEnvironment: z.coerce.number().int().min(0).max(1_000_000).optional(),
  maxUnaryReadsPerConnection: z.coerce.number().int().min(1).max(1024),
  maxQueuedExecStdinBytes: z.coerce
    .number()
    .int()
    .min(0)
    .max(1024 ** 4)
    .optional(),
  allowRegistries: z.array(
    z
      .string()
      .regex(
        /^(localhost|[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/,
        "expected HOST or HOST:PORT (a registry)",
      ),
  ),
  finishedLogRetention: z.coerce.number().int().min(0).max(1_000_000),
  finishedLogMaxAgeSecs: z.coerce
    .number()
    .int()
    .min(0)
    .max(10 * 365 * 86_400),
});

const flagToEnv: Record<string, string> = {
  listen: "CHALK_LISTEN",
  "metrics-listen": "CHALK_METRICS_LISTEN",
  "data-dir": "CHALK_DATA_DIR",
  "images-dir": "CHALK_IMAGES_DIR",
  backend: "CHALK_BACKEND",
  "default-cpu": "CHALK_DEFAULT_CPU",
  "default-memory": "CHALK_DEFAULT_MEMORY",
  "environments-file": "CHALK_ENVIRONMENTS_FILE",
  registry: "CHALK_REGISTRY",
  "runtime-class": "CHALK_RUNTIME_CLASS",
  runsc: "CHALK_RUNSC",
  "log-level": "CHALK_LOG_LEVEL",
  "tls-cert": "CHALK_TLS_CERT",
  "tls-key": "CHALK_TLS_KEY",
  "tokens-file": "CHALK_TOKENS_FILE",
  "default-disk": "CHALK_DEFAULT_DISK",
  "volume-quota": "CHALK_VOLUME_QUOTA",
  "build-memory": "CHALK_BUILD_MEMORY",
  "build-cpu": "CHALK_BUILD_CPU",
  "build-pids": "CHALK_BUILD_PIDS",
};

/** Result of {@link parseConfig}: a configuration, or a request for the help text. */
export type ParsedArgs = { help: true } | { help: false; config: ServerConfig };

/**
 * Reads the configuration from command-line flags over environment variables over defaults, and
 * validates it. A bad value throws {@link ConfigError} naming the flag.
 */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ParsedArgs {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      // pnpm passes a literal "--" through to the script.
      args: argv.filter((a, i) => !(a === "--" && i === 0)),
      strict: true,
      allowPositionals: false,
      options: {
        listen: { type: "string" },
        "metrics-listen": { type: "string" },
        "data-dir": { type: "string" },
        "images-dir": { type: "string" },
        backend: { type: "string" },
        "default-cpu": { type: "string" },
        "default-memory": { type: "string" },
        "environments-file": { type: "string" },
        registry: { type: "string" },
        kubeconfig: { type: "string" },
        "namespace-prefix": { type: "string" },
        "cpu-request-percent": { type: "string" },
        "runtime-class": { type: "string" },
        "gpu-node-label": { type: "string" },
        "registry-insecure": { type: "boolean" },
        runsc: { type: "string" },
        "rootfs-image": { type: "string", multiple: true },
        token: { type: "string", multiple: true },
        "tokens-file": { type: "string" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        "insecure-no-auth": { type: "boolean" },
        "log-level": { type: "string" },
        "container-log-max-bytes": { type: "string" },
        "max-concurrent-execs": { type: "string" },
        "default-disk": { type: "string" },
        "volume-quota": { type: "string" },
        "build-memory": { type: "string" },
        "build-cpu": { type: "string" },
        "build-pids": { type: "string" },
        "max-execs-per-container": { type: "string" },
        "max-execs-per-environment": { type: "string" },
        "max-long-execs-per-container": { type: "string" },
        "max-long-execs-per-environment": { type: "string" },
        "max-queued-execs": { type: "string" },
        "max-queued-execs-per-environment": { type: "string" },
        "max-queued-exec-stdin-bytes": { type: "string" },
        "max-unary-reads-per-connection": { type: "string" },
        "allow-registry": { type: "string", multiple: true },
        "finished-log-retention": { type: "string" },
        "finished-log-max-age-secs": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n\n${USAGE}`);
  }
  if (values.help) return { help: true };
  const pick = (flag: string): string | undefined => {
    const v = values[flag];
    if (typeof v === "string") return v;
    const e = flagToEnv[flag];
    const fromEnv = e ? env[e] : undefined;
    return fromEnv === "" ? undefined : fromEnv;
  };
  const raw = {
    listen: pick("listen") ?? "127.0.0.1:50051",
    metricsListen: pick("metrics-listen"),
    dataDir: pick("data-dir") ?? "/var/lib/chalk",
    imagesDir: pick("images-dir"),
    backend: pick("backend") ?? "local",
    defaultCpu: pick("default-cpu") ?? "1",
    defaultMemory: pick("default-memory") ?? "1Gi",
    environmentsFile: pick("environments-file"),
    registry: pick("registry"),
    runsc: pick("runsc"),
    rootfsImages: (values["rootfs-image"] as string[] | undefined) ?? [],
    tlsCert: pick("tls-cert"),
    tlsKey: pick("tls-key"),
    insecureNoAuth: values["insecure-no-auth"] === true,
    logLevel: pick("log-level") ?? "info",
    containerLogMaxBytes: pick("container-log-max-bytes") ?? String(8 * 1024 * 1024),
    maxConcurrentExecs: pick("max-concurrent-execs") ?? "32",
    defaultDisk: pick("default-disk") ?? "10Gi",
    volumeQuota: pick("volume-quota") ?? "10Gi",
    buildMemory: pick("build-memory") ?? DEFAULT_STEP_LIMITS.memory,
    buildCpu: pick("build-cpu") ?? DEFAULT_STEP_LIMITS.cpu,
    buildPids: pick("build-pids") ?? String(DEFAULT_STEP_LIMITS.pids),
    maxExecsPerContainer: pick("max-execs-per-container"),
    maxExecsPerEnvironment: pick("max-execs-per-environment"),
    maxLongExecsPerContainer: pick("max-long-execs-per-container"),
    maxLongExecsPerEnvironment: pick("max-long-execs-per-environment"),
    maxQueuedExecs: pick("max-queued-execs"),
    maxQueuedExecsPerEnvironment: pick("max-queued-execs-per-environment"),
    maxQueuedExecStdinBytes: pick("max-queued-exec-stdin-bytes"),
    maxUnaryReadsPerConnection:
      pick("max-unary-reads-per-connection") ?? DEFAULT_MAX_UNARY_READS_PER_CONNECTION,
    allowRegistries: [
      ...((values["allow-registry"] as string[] | undefined) ?? []),
      ...(env.CHALK_ALLOW_REGISTRIES ?? "").split(",").filter((r) => r !== ""),
    ],
    finishedLogRetention: pick("finished-log-retention") ?? "100",
    finishedLogMaxAgeSecs: pick("finished-log-max-age-secs") ?? String(7 * 86_400),
  };
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `--${kebab(String(i.path[0] ?? "?"))}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
  }
  const c = parsed.data;
  if (c.backend !== "local" && c.backend !== "kubernetes") {
    throw new ConfigError(
      `--backend: ${JSON.stringify(c.backend)} is unknown; accepted: "local", "kubernetes"`,
    );
  }
  const kubernetes = c.backend === "kubernetes" ? kubernetesSettings(values, pick, env, c) : undefined;
  for (const e of c.rootfsImages) {
    // Containers and sandboxes name it as an image reference: it must parse as one.
    try {
      parseReference(e.slice(0, e.indexOf("=")), "--rootfs-image");
    } catch (err) {
      throw new ConfigError(`--rootfs-image ${e}: ${ChalkError.from(err).rawMessage}`);
    }
  }
  const tokens = readTokens(values.token as string[] | undefined, pick("tokens-file"), env);
  if (tokens.length === 0 && !c.insecureNoAuth) {
    throw new ConfigError(
      "no auth token: pass --tokens-file FILE, --token TOKEN@ENVS (repeatable), or set CHALK_TOKEN with CHALK_TOKEN_ENVIRONMENTS; for a loopback-only server without auth pass --insecure-no-auth",
    );
  }
  if (c.insecureNoAuth && !isLoopback(c.listen)) {
    throw new ConfigError(
      `--insecure-no-auth: refused on ${c.listen}, which is not a loopback address; use --token`,
    );
  }
  const tls = readTls(c.tlsCert, c.tlsKey);
  if (!tls && !isLoopback(c.listen)) {
    throw new ConfigError(
      `--listen ${c.listen}: not a loopback address, so the server needs TLS (bearer tokens would cross the network in the clear); give --tls-cert FILE and --tls-key FILE (or CHALK_TLS_CERT and CHALK_TLS_KEY), or listen on 127.0.0.1`,
    );
  }
  const dataDir = isAbsolute(c.dataDir) ? c.dataDir : resolve(c.dataDir);
  return {
    help: false,
    config: {
      listen: c.listen,
      metricsListen: c.metricsListen,
      dataDir,
      imagesDir: c.imagesDir ? resolve(c.imagesDir) : join(dataDir, "images"),
      backend: c.backend,
      kubernetes,
      defaults: { cpu: c.defaultCpu, memory: c.defaultMemory },
      environments: c.environmentsFile ? readEnvironmentsFile(c.environmentsFile) : {},
      registry: c.registry,
      rootfsImages: Object.fromEntries(
        c.rootfsImages.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]),
      ),
      tokens,
      tls,
      insecureNoAuth: c.insecureNoAuth,
      logLevel: c.logLevel,
      containerLogMaxBytes: c.containerLogMaxBytes,
      maxConcurrentExecs: c.maxConcurrentExecs,
      execSlots: defaultExecSlotLimits(c.maxConcurrentExecs, {
        ...(c.maxExecsPerContainer === undefined ? {} : { perContainer: c.maxExecsPerContainer }),
        ...(c.maxExecsPerEnvironment === undefined ? {} : { perEnvironment: c.maxExecsPerEnvironment }),
        ...(c.maxLongExecsPerContainer === undefined ? {} : { longPerContainer: c.maxLongExecsPerContainer }),
        ...(c.maxLongExecsPerEnvironment === undefined
          ? {}
          : { longPerEnvironment: c.maxLongExecsPerEnvironment }),
        ...(c.maxQueuedExecs === undefined ? {} : { queued: c.maxQueuedExecs }),
        ...(c.maxQueuedExecsPerEnvironment === undefined
          ? {}
          : { queuedPerEnvironment: c.maxQueuedExecsPerEnvironment }),
        ...(c.maxQueuedExecStdinBytes === undefined ? {} : { queuedStdinBytes: c.maxQueuedExecStdinBytes }),
      }),
      allowedRegistries: c.allowRegistries,
      finishedLogRetention: c.finishedLogRetention,
      finishedLogMaxAgeSecs: c.finishedLogMaxAgeSecs,
      maxUnaryReadsPerConnection: c.maxUnaryReadsPerConnection,
      runsc: c.runsc,
      defaultDisk: c.defaultDisk === "none" ? undefined : c.defaultDisk,
      volumeQuotaBytes: c.volumeQuota === "none" ? undefined : parseMemory(c.volumeQuota),
      build: { memory: c.buildMemory, cpu: c.buildCpu, pids: c.buildPids },
    },
  };
}

function kebab(key: string): string {
  return key
    .replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)
    .replace(/^rootfs-images$/, "rootfs-image")
    .replace(/^allow-registries$/, "allow-registry");
}

function readEnvironmentsFile(path: string): Record<string, EnvironmentOverrides> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new ConfigError(`--environments-file: cannot read ${path}: ${(err as Error).message}`);
  }
  const parsed = environmentsSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new ConfigError(`--environments-file ${path}: ${problems.join("; ")}`);
  }
  return parsed.data;
}

/** The default resources of an environment: its entry in the environments file over the defaults. */
export function environmentDefaults(config: ServerConfig, environment: string): EnvironmentDefaults {
  const own = config.environments[environment] ?? {};
  return { cpu: own.cpu ?? config.defaults.cpu, memory: own.memory ?? config.defaults.memory };
}
