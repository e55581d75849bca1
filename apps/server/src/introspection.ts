import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { ChalkError, Code } from "@chalk/core";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";

/** What {@link addIntrospection} needs of a grpc-js server. */
type ServiceHost = Parameters<HealthImplementation["addToServer"]>[0] &
  Parameters<ReflectionService["addToServer"]>[0];

/**
 * The directory holding the `.proto` files the server ships: `apps/server/proto` after a build (copied
 * there by `scripts/copy-protos.mjs`), else the repository's `proto/` when running from source.
 */
export function protoDir(): string {
  const candidates = [
    fileURLToPath(new URL("../proto", import.meta.url)),
    fileURLToPath(new URL("../../../proto", import.meta.url)),
  ];
  const found = candidates.find((d) => existsSync(join(d, "chalk")));
  if (!found) {
    throw new ChalkError(
      Code.Internal,
      `the server's .proto files are missing (looked in ${candidates.join(", ")})`,
    );
  }
  return found;
}

function protoFiles(dir: string, root = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return protoFiles(p, root);
    return name.endsWith(".proto") ? [relative(root, p)] : [];
  });
}

/**
 * Mounts the standard gRPC health service (`grpc.health.v1.Health`, open without a token so probes
 * work) and server reflection (v1 and v1alpha, from the shipped `.proto` files) so `grpcurl` can list
 * and call every service. Returns the health implementation to flip statuses with.
 */
export function addIntrospection(server: ServiceHost, serviceNames: readonly string[]): HealthImplementation {
  const dir = protoDir();
  const healthDir = join(healthProtoPath, "..", "..", "..");
  const definition = loadSync([...protoFiles(dir), relative(healthDir, healthProtoPath)], {
    includeDirs: [dir, healthDir],
    keepCase: false,
  });
  new ReflectionService(definition).addToServer(server);
  const health = new HealthImplementation({
    "": "NOT_SERVING",
    ...Object.fromEntries(serviceNames.map((s) => [s, "NOT_SERVING" as const])),
  });
  health.addToServer(server);
  return health;
}
