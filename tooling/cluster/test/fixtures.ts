import { ensureCluster, type PushedImage, pushTestImage, type TestCluster } from "../src/index.js";

/** The cluster for this test file, held by this vitest run (see src/global-setup.ts). */
export function useCluster(): Promise<TestCluster> {
  return ensureCluster();
}

/** A fresh busybox test image in the cluster's registry, for this test file. */
export function busyboxImage(cluster: TestCluster, files: Record<string, string> = {}): Promise<PushedImage> {
  return pushTestImage(cluster, {
    repository: "test/busybox",
    tag: `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`,
    files,
  });
}

/** A Pod manifest (JSON) running `command` in `image`, in gVisor, with labels. */
export function podManifest(opts: {
  namespace: string;
  name: string;
  image: string;
  command: string[];
  labels?: Record<string, string>;
  runtimeClassName?: string | null;
  port?: number;
}): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { namespace: opts.namespace, name: opts.name, labels: opts.labels ?? {} },
    spec: {
      ...(opts.runtimeClassName === null ? {} : { runtimeClassName: opts.runtimeClassName ?? "gvisor" }),
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: "main",
          image: opts.image,
          imagePullPolicy: "IfNotPresent",
          command: opts.command,
          ...(opts.port ? { ports: [{ containerPort: opts.port }] } : {}),
        },
      ],
    },
  });
}
