import { readdirSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import type { Server as HttpServer } from "node:http";
import { join } from "node:path";
import type { DescFile } from "@bufbuild/protobuf";
import { ChalkError, Code } from "@chalk/core";
import { ContainerService } from "@chalk/proto/container/v1";
import { SandboxService } from "@chalk/proto/sandbox/v1";
import { VolumeService } from "@chalk/proto/volume/v1";
import { type AddServiceOptions, addService, listen } from "@chalk/rpc";
import type { SandboxRuntime } from "@chalk/sandbox";
import { sandboxServiceImpl } from "@chalk/sandbox/server";
import { VolumeStore, volumeServiceImpl } from "@chalk/volume/host";
import type { Logger } from "pino";
import { requireToken, requireValidEnvironment } from "./auth.js";
import type { ServerConfig } from "./config.js";
import { ContainerManager, type SecretsProvider } from "./container-manager.js";
import { containerServiceImpl } from "./container-service.js";
import type { ImageProvider } from "./images.js";
import { addIntrospection } from "./introspection.js";
import { callCode, createLogger, logCall } from "./logging.js";
import { ServerMetrics } from "./metrics.js";
import { StateStore } from "./state.js";

/** The parts a backend provides: the runtime, images and secrets. */
export interface Backend {
  runtime: SandboxRuntime;
  images: ImageProvider;
  secrets: SecretsProvider;
  /** Extra gRPC services to mount (image, secrets), with the same interceptors. */
  mount(
    add: <S extends Parameters<typeof addService>[1]>(
      service: S,
      impl: Parameters<typeof addService<S>>[2],
    ) => void,
  ): void;
  /** Directories whose contents clients may use as a sandbox root filesystem. */
  rootfsRoots: string[];
  close(): Promise<void>;
}

/** Options for {@link startServer}. */
export interface ServerStartOptions {
  /** Creates the backend for the configuration. */
  backend(config: ServerConfig, volumes: VolumeStore, log: Logger): Promise<Backend>;
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

function hasNvidiaDevice(): boolean {
  try {
    return readdirSync("/dev").some((d) => /^nvidia\d+$/.test(d));
  } catch {
    return false;
  }
}

/**
 * Starts the Chalk server: state, backend, reconciliation, then the gRPC services (container,
 * sandbox, volume and the backend's), health, reflection, and the metrics endpoint.
 */
export async function startServer(config: ServerConfig, options: ServerStartOptions): Promise<RunningServer> {
  const log = options.log ?? createLogger(config.logLevel);
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const state = StateStore.open(config.dataDir);
  const metrics = new ServerMetrics(() => state.countByStatus());
  const volumes = await VolumeStore.open({
    dataDir: join(config.dataDir, "volumes"),
    ...(config.volumeQuotaBytes === undefined ? {} : { quotaBytes: config.volumeQuotaBytes }),
  });
  const backend = await options.backend(config, volumes, log);
  const manager = new ContainerManager({
    config,
    state,
    runtime: backend.runtime,
    images: backend.images,
    volumes,
    secrets: backend.secrets,
    metrics,
    log,
    hasGpu: hasNvidiaDevice(),
  });
  await manager.reconcile();

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
  const serviceNames: string[] = [];
  const files: DescFile[] = [];
  let health: ReturnType<typeof addIntrospection> | undefined;
  const { server, address } = await listen({
    address: config.listen,
    register(s) {
      const add: Parameters<Backend["mount"]>[0] = (service, impl) => {
        addService(s, service, impl, serviceOptions);
        serviceNames.push(service.typeName);
        files.push(service.file);
      };
      add(ContainerService, containerServiceImpl(manager, metrics));
      add(
        SandboxService,
        sandboxServiceImpl(backend.runtime, {
          scopeToEnvironment: true,
          admit(o) {
            if ((o.mounts?.length ?? 0) > 0 || o.logPath) {
              throw new ChalkError(
                Code.PermissionDenied,
                "spec: mounts and log_path are not accepted from clients",
              );
            }
            const layers = typeof o.rootfs === "string" ? [o.rootfs] : o.rootfs;
            for (const l of layers) {
              if (!backend.rootfsRoots.some((root) => l.startsWith(`${root}/`)) || l.includes("/../")) {
                throw new ChalkError(
                  Code.PermissionDenied,
                  `spec.rootfs: ${JSON.stringify(l)} is not an image this server built; run a Container instead`,
                );
              }
            }
            return o;
          },
        }),
      );
      add(VolumeService, volumeServiceImpl(volumes));
      backend.mount(add);
      health = addIntrospection(s, files, serviceNames);
    },
  });
  for (const name of ["", ...serviceNames]) health?.setStatus(name, "SERVING");

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
    },
    "chalk-server listening",
  );

  return {
    address,
    metricsAddress,
    async close() {
      for (const name of ["", ...serviceNames]) health?.setStatus(name, "NOT_SERVING");
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      metricsServer?.close();
      manager.close();
      await backend.close();
      await volumes.close();
      state.close();
      log.info("chalk-server stopped (containers keep running)");
    },
  };
}
