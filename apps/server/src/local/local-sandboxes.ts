import { ChalkError, Code } from "@chalk/core";
import type { SandboxRuntime } from "@chalk/sandbox";

/**
 * The sandboxes the sandbox service creates on this machine: a `LocalRuntime` whose create refuses
 * mounts, log paths and root filesystems outside the image store.
 */
export function localSandboxes(runtime: SandboxRuntime, rootfsRoots: readonly string[]): SandboxRuntime {
  return {
    get: (id) => runtime.get(id),
    list: (options) => runtime.list(options),
    async create(o) {
      if ((o.mounts?.length ?? 0) > 0 || o.logPath) {
        throw new ChalkError(
          Code.PermissionDenied,
          "spec: mounts and log_path are not accepted from clients",
        );
      }
      const layers = typeof o.rootfs === "string" ? [o.rootfs] : o.rootfs;
      for (const l of layers) {
        if (!rootfsRoots.some((root) => l.startsWith(`${root}/`)) || l.includes("/../")) {
          throw new ChalkError(
            Code.PermissionDenied,
            `spec.rootfs: ${JSON.stringify(l)} is not an image this server built; run a Container instead`,
          );
        }
      }
      return runtime.create(o);
    },
  };
}
