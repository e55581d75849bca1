import type { Server as HttpServer } from "node:http";
import { parseMemory } from "@chalk/core";
import { ContainerService } from "@chalk/proto/container/v1";
import { ContainerFileService } from "@chalk/proto/container/v1/files";
import { SandboxService } from "@chalk/proto/sandbox/v1";
import { type AddServiceOptions, addService, createServer } from "@chalk/rpc";
import { sandboxServiceImpl } from "@chalk/sandbox/server";
import type { Logger } from "pino";
import { requireToken, requireValidEnvironment } from "./auth.js";
import type { ComputeBackend } from "./backend/compute-backend.js";
import { environmentDefaults, type ServerConfig } from "./config.js";
import { containerServiceImpl } from "./container/container-service.js";
import { Containers } from "./container/containers.js";
import { fileServiceImpl } from "./container/file-service.js";
import { reconcile } from "./container/reconcile.js";
import { lockDataDir } from "./data-dir-lock.js";
import { execGatedSandboxes } from "./exec-gated-sandboxes.js";
import { ExecSlots } from "./exec-slots.js";
import { callCode, createLogger, logCall } from "./logging.js";
import { ServerMetrics } from "./metrics.js";
import type { ServiceAdder } from "./service-adder.js";

/** Options for {@link startServer}. */
export interface ServerStartOptions {
  /** Creates the compute backend for the configuration (`localBackend`). */
  backend(config: ServerConfig, log: Logger): Promise<ComputeBackend>;
  /** A logger; default: pino JSON on stdout at the configured level. */
  log?: Logger;
}

/** A running server. */
export interface RunningServer {
  /** The bound gRPC address. */
  address: string;
  /** The bound metrics address, when serving metrics. */
  metricsAddress: string | undefined;
  /** Stops serving and closes state. Containers keep running. */
  close(): Promise<void>;
}

/**
 * Starts the Chalk server: the backend, the container service's reconciliation with it, then the
 * gRPC services (containers, sandboxes, and the backend's volumes, secrets and images), health,
 * reflection, and the metrics endpoint. The data dir is locked first, for the server's life: a second
 * server on it fails with `DataDirInUseError` before touching anything (data-dir-lock.ts).
 */
export async function startServer(config: ServerConfig, options: ServerStartOptions): Promise<RunningServer> {
  const log = options.log ?? createLogger(config.logLevel);
  const lock = lockDataDir(config.dataDir);
  let backend: ComputeBackend;
  try {
    backend = await options.backend(config, log);
  } catch (err) {
    lock.release();
    throw err;
  }
  lock.recordPid();
  const metrics = new ServerMetrics(() => backend.records.countByStatus());
  backend.registerMetrics?.(metrics.registry);
  // One set of exec slots for every exec path: ContainerService.ExecContainer and SandboxService.Exec.
  const execSlots = new ExecSlots(config.execSlots);
  metrics.observeExecSlots(() => ({ running: execSlots.running, queued: execSlots.queued }));
  const containers = new Containers({
    backend,
    defaults: (environment) => environmentDefaults(config, environment),
    ...(config.defaultDisk ? { defaultDiskBytes: parseMemory(config.defaultDisk, "defaultDisk") } : {}),
    execSlots,
    metrics,
    log,
  });
  await reconcile(containers);

  const interceptors = [
    ...(config.insecureNoAuth && config.tokens.length === 0 ? [] : [requireToken(config.tokens)]),
    requireValidEnvironment,
  ];
  const serviceOptions: AddServiceOptions = {
    interceptors,
    onCallEnd(ctx, error, durationMs) {
      logCall(log, ctx, error, durationMs);
      metrics.calls.inc({ method: ctx.method.name, code: String(callCode(error)) });
    },
  };
  const server = createServer({
    address: config.listen,
    tls: config.tls,
    maxUnaryReadsPerConnection: config.maxUnaryReadsPerConnection,
  });
  const add: ServiceAdder = (service, impl) => addService(server, service, impl, serviceOptions);
  add(ContainerService, containerServiceImpl(containers, metrics));
  add(ContainerFileService, fileServiceImpl(containers, metrics));
  add(
    SandboxService,
    sandboxServiceImpl(execGatedSandboxes(backend.sandboxes, execSlots), {
      scopeToEnvironment: true,
      // Sandboxes get the caller's environment's default resources, as containers do.
      admit(o, ctx) {
        const defaults = environmentDefaults(config, ctx.environment);
        return { ...o, cpu: o.cpu ?? defaults.cpu, memory: o.memory ?? defaults.memory };
      },
    }),
  );
  backend.mountServices(add);
  const address = await server.start();

  let metricsServer: HttpServer | undefined;
  let metricsAddress: string | undefined;
  if (config.metricsListen) {
    ({ server: metricsServer, address: metricsAddress } = await metrics.serve(config.metricsListen));
  }
  log.info(
    {
      address,
      metrics: metricsAddress,
      dataDir: config.dataDir,
      backend: config.backend,
      auth: interceptors.length > 1,
      tls: server.tls,
    },
    "chalk-server listening",
  );

  return {
    address,
    metricsAddress,
    async close() {
      await server.stop();
      metricsServer?.close();
      containers.close();
      await backend.close();
      lock.release();
      log.info("chalk-server stopped (containers keep running)");
    },
  };
}
