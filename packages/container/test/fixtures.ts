/**
 * Fixtures for the end-to-end tests: one real server process per test file (on a temporary data dir,
 * sharing a persistent image store so base images are built once per machine), and a tracker that
 * stops every container a test started, also when it fails.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { ContainerService, ContainerStatus } from "@chalk/proto/container/v1";
import { createClient } from "@chalk/rpc";
import { ensureCluster, kubectl, pushRootfsImage, type TestCluster } from "@chalk/test-cluster";
import { afterAll, test as base, beforeAll } from "vitest";
import { Container, type ContainerCreateOptions } from "../src/index.js";
import { namespaceOf, removeDataDir, type ServerProcess, startServerProcess } from "./server.js";

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

/** The backends a server can run on. */
export type Backend = "local" | "kubernetes";

/**
 * The backends the matrix runs: both, unless `CHALK_TEST_BACKENDS` names a subset
 * (`local`, `kubernetes`, `local,kubernetes`).
 */
export const BACKENDS: Backend[] = (process.env.CHALK_TEST_BACKENDS ?? "local,kubernetes")
  .split(",")
  .filter((b): b is Backend => b === "local" || b === "kubernetes");

/**
 * The server flags and test image of a backend. On Kubernetes the test cluster is started (or
 * joined: it is refcounted) and the same minbase root filesystem is pushed to its registry once,
 * so both backends run one image: an operator image locally, a registry reference by digest on
 * Kubernetes.
 */
async function backendSetup(
  backend: Backend,
  namespacePrefix: string,
): Promise<{ args: string[]; image: string; cluster?: TestCluster }> {
  if (backend === "local")
    return { args: ["--rootfs-image", `${TEST_IMAGE}=${TEST_ROOTFS}`], image: TEST_IMAGE };
  const cluster = await ensureCluster();
  const pushed = await pushRootfsImage(cluster, {
    dir: TEST_ROOTFS,
    repository: "test/minbase",
    key: "bookworm-minbase",
  });
  return {
    args: [
      "--backend",
      "kubernetes",
      "--kubeconfig",
      cluster.kubeconfig,
      "--registry",
      cluster.registry,
      "--registry-insecure",
      "--namespace-prefix",
      namespacePrefix,
      // The test node has 2 CPUs and test files run in parallel: request a tenth of each limit.
      "--cpu-request-percent",
      "10",
    ],
    image: pushed.digestReference,
    cluster,
  };
}

/**
 * Deletes the namespaces (and their cluster-scoped volumes) a Kubernetes test server made for
 * `environments`, waiting until they are gone.
 */
async function deleteNamespaces(
  cluster: TestCluster,
  environments: readonly string[],
  prefix: string,
): Promise<void> {
  for (const env of environments) {
    const ns = namespaceOf(env, prefix);
    await kubectl(cluster, [
      "delete",
      "namespace",
      ns,
      "--ignore-not-found",
      "--wait=true",
      "--timeout=120s",
    ]).catch(() => undefined);
    await kubectl(cluster, ["delete", "pv", `chalk-volumes-${ns}`, "--ignore-not-found"]).catch(
      () => undefined,
    );
  }
}

/**
 * Starts one server for the test file (with `tls`, serving TLS with a fresh certificate that the
 * test transports verify); stops its containers and the server afterwards. The suite fails when the
 * server logged an unhandled rejection or uncaught exception.
 */
export function useServer(
  args: string[] = [],
  options: { tls?: boolean; backend?: Backend; environments?: string[] } = {},
): {
  readonly server: ServerProcess;
  readonly image: string;
  readonly backend: Backend;
  namespaceOf(environment: string): string;
} {
  const backend = options.backend ?? "local";
  // Each test server gets namespaces of its own, so test files (and test runs of other worktrees)
  // sharing the cluster never touch each other's.
  const prefix = `ct${Math.random().toString(36).slice(2, 8)}-`;
  const environments = options.environments ?? ["default", "team-a", "team-b"];
  const holder: { server: ServerProcess | undefined; image: string; cluster: TestCluster | undefined } = {
    server: undefined,
    image: TEST_IMAGE,
    cluster: undefined,
  };
  beforeAll(async () => {
    const setup = await backendSetup(backend, prefix);
    holder.image = setup.image;
    holder.cluster = setup.cluster;
    holder.server = await startServerProcess({
      args: ["--images-dir", IMAGES_DIR, ...setup.args, ...args],
      tls: options.tls ?? false,
    });
  });
  afterAll(async () => {
    const server = holder.server;
    try {
      if (!server) return;
      try {
        await stopEverything(server, environments);
      } finally {
        try {
          await server.kill();
        } finally {
          await removeDataDir(server.dataDir);
        }
      }
    } finally {
      if (holder.cluster) await deleteNamespaces(holder.cluster, environments, prefix);
    }
  });
  return {
    get server() {
      if (!holder.server) throw new Error("server not started");
      return holder.server;
    },
    get image() {
      return holder.image;
    },
    backend,
    namespaceOf: (environment) => namespaceOf(environment, prefix),
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
