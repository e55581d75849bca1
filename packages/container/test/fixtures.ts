/**
 * Fixtures for the end-to-end tests: one real server process per test file (on a temporary data dir,
 * sharing a persistent image store so base images are built once per machine), and a tracker that
 * stops every container a test started, also when it fails.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { ContainerService, ContainerStatus } from "@chalk/proto/container/v1";
import { createClient } from "@chalk/rpc";
import { afterAll, test as base, beforeAll } from "vitest";
import { Container, type ContainerCreateOptions } from "../src/index.js";
import { removeDataDir, type ServerProcess, startServerProcess } from "./server.js";

/**
 * The image most tests run: Debian bookworm minbase (the cached test root filesystem of
 * `tooling/scripts/rootfs.sh`), which the test server serves as an operator-configured image
 * (`--rootfs-image minbase=DIR`), so these tests need no image build.
 */
export const TEST_IMAGE = "minbase";
/** Its root filesystem on the host. */
export const TEST_ROOTFS = execFileSync(
  "bash",
  [join(import.meta.dirname, "../../../tooling/scripts/rootfs.sh")],
  {
    encoding: "utf8",
  },
).trim();

/** A persistent image store shared by test servers (outside the repository). */
export const IMAGES_DIR = "/var/cache/chalk/images";

/**
 * Starts one server for the test file (with `tls`, serving TLS with a fresh certificate that the
 * test transports verify); stops its containers and the server afterwards. The suite fails when the
 * server logged an unhandled rejection or uncaught exception.
 */
export function useServer(
  args: string[] = [],
  options: { tls?: boolean } = {},
): { readonly server: ServerProcess } {
  const holder: { server: ServerProcess | undefined } = { server: undefined };
  beforeAll(async () => {
    holder.server = await startServerProcess({
      args: ["--images-dir", IMAGES_DIR, "--rootfs-image", `${TEST_IMAGE}=${TEST_ROOTFS}`, ...args],
      tls: options.tls ?? false,
    });
  });
  afterAll(async () => {
    const server = holder.server;
    if (!server) return;
    try {
      await stopEverything(server);
    } finally {
      try {
        await server.kill();
      } finally {
        await removeDataDir(server.dataDir);
      }
    }
  });
  return {
    get server() {
      if (!holder.server) throw new Error("server not started");
      return holder.server;
    },
  };
}

/** Stops every active container of the given environments. */
export async function stopEverything(server: ServerProcess, environments = ["default", "team-a", "team-b"]) {
  for (const env of environments) {
    const client = createClient(ContainerService, server.transport(env));
    const { containers } = await client.listContainers({ limit: 1000 }).catch(() => ({ containers: [] }));
    for (const c of containers) {
      if (
        c.status === ContainerStatus.PENDING ||
        c.status === ContainerStatus.RUNNING ||
        c.status === ContainerStatus.UNKNOWN
      ) {
        await client.stopContainer({ ref: { case: "id", value: c.id } }).catch(() => undefined);
      }
    }
  }
}

/** `test` with a `run` fixture: runs a container and stops it after the test, whatever happened. */
export function containerTest(getServer: () => ServerProcess) {
  return base.extend<{
    run: (options: Omit<ContainerCreateOptions, "transport">, env?: string) => Promise<Container>;
  }>({
    // biome-ignore lint/correctness/noEmptyPattern: vitest fixtures take their dependencies by destructuring.
    run: async ({}, use) => {
      const started: Container[] = [];
      try {
        await use(async (options, env = "default") => {
          const c = new Container({
            ...options,
            transport: getServer().transport(env),
          } as ContainerCreateOptions);
          started.push(c);
          return c.run();
        });
      } finally {
        for (const c of started) {
          try {
            await c.stop();
          } catch {
            // Never ran, or already stopped.
          }
        }
      }
    },
  });
}
