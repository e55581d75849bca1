import { join, relative } from "node:path";
import { type DescFile, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type DescriptorProto, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";

/** What {@link addIntrospection} needs of a grpc-js server. */
type ServiceHost = Parameters<HealthImplementation["addToServer"]>[0] &
  Parameters<ReflectionService["addToServer"]>[0];

/** A file and everything it imports, each once, dependencies first. */
function withDependencies(files: readonly DescFile[], seen = new Set<string>()): DescFile[] {
  const out: DescFile[] = [];
  for (const f of files) {
    if (seen.has(f.name)) continue;
    seen.add(f.name);
    out.push(...withDependencies(f.dependencies, seen), f);
  }
  return out;
}

/**
 * proto-loader names a map field's entry type after the field (`Statuses`) where protobuf requires
 * `<Field>Entry`, and grpcurl rejects such a descriptor: rename the entries and the fields' types.
 */
function fixMapEntries(bin: Buffer): Buffer {
  const file = fromBinary(FileDescriptorProtoSchema, bin);
  const fix = (messages: DescriptorProto[]) => {
    for (const m of messages) {
      for (const nested of m.nestedType) {
        if (!nested.options?.mapEntry || nested.name.endsWith("Entry")) continue;
        const old = nested.name;
        nested.name = `${old}Entry`;
        for (const f of m.field) {
          if (f.typeName === old || f.typeName.endsWith(`.${m.name}.${old}`)) {
            f.typeName = `.${file.package}.${m.name}.${nested.name}`;
          }
        }
      }
      fix(m.nestedType);
    }
  };
  fix(file.messageType);
  return Buffer.from(toBinary(FileDescriptorProtoSchema, file));
}

/**
 * Mounts the standard gRPC health service (`grpc.health.v1.Health`, open without a token so probes
 * work) and server reflection (v1 and v1alpha) so `grpcurl` can list and call every service.
 *
 * Reflection serves the file descriptors compiled into `@chalk/proto` (exactly what buf produced from
 * `proto/`), plus the health proto that `grpc-health-check` ships, loaded by `@grpc/proto-loader`.
 * Re-deriving the Chalk descriptors with proto-loader would lose cross-package references (a
 * container spec's `chalk.secrets.v1.SecretSource`), which breaks grpcurl.
 */
export function addIntrospection(
  server: ServiceHost,
  files: readonly DescFile[],
  serviceNames: readonly string[],
): HealthImplementation {
  const healthDir = join(healthProtoPath, "..", "..", "..");
  const definition = loadSync(relative(healthDir, healthProtoPath), {
    includeDirs: [healthDir],
    keepCase: true,
  });
  for (const entry of Object.values(definition)) {
    const e = entry as { fileDescriptorProtos?: Buffer[] };
    if (e.fileDescriptorProtos) e.fileDescriptorProtos = e.fileDescriptorProtos.map(fixMapEntries);
  }
  definition["chalk.descriptors"] = {
    format: "Protocol Buffer 3 FileDescriptorProto",
    type: {},
    fileDescriptorProtos: withDependencies(files).map((f) =>
      Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)),
    ),
  } as unknown as (typeof definition)[string];
  new ReflectionService(definition).addToServer(server);
  const health = new HealthImplementation({
    "": "NOT_SERVING",
    ...Object.fromEntries(serviceNames.map((s) => [s, "NOT_SERVING" as const])),
  });
  health.addToServer(server);
  return health;
}
