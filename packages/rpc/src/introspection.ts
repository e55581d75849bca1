import { join, relative } from "node:path";
import { type DescFile, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type DescriptorProto, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";

/** What {@link addHealth} and {@link addReflection} need of a grpc-js server. */
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
 * Repairs what proto-loader gets wrong in the descriptors it derives, which protobuf-es and grpcurl
 * reject: it names a map field's entry type after the field (`Statuses`) where protobuf requires
 * `<Field>Entry`, and it leaves field types relative (`ServingStatus`) where descriptors carry fully
 * qualified names (`.grpc.health.v1.HealthCheckResponse.ServingStatus`).
 */
function fixDescriptor(bin: Buffer): Buffer {
  const file = fromBinary(FileDescriptorProtoSchema, bin);
  const renameEntries = (messages: DescriptorProto[]) => {
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
      renameEntries(m.nestedType);
    }
  };
  renameEntries(file.messageType);
  // Every type the file defines, fully qualified.
  const defined = new Set<string>();
  const collect = (scope: string, messages: DescriptorProto[]) => {
    for (const m of messages) {
      const name = `${scope}.${m.name}`;
      defined.add(name);
      for (const e of m.enumType) defined.add(`${name}.${e.name}`);
      collect(name, m.nestedType);
    }
  };
  const root = file.package ? `.${file.package}` : "";
  collect(root, file.messageType);
  for (const e of file.enumType) defined.add(`${root}.${e.name}`);
  // Protobuf's scoping: look the name up from the innermost enclosing scope outwards.
  const resolve = (scope: string, name: string) => {
    if (name === "" || name.startsWith(".")) return name;
    for (let s = scope; ; s = s.slice(0, s.lastIndexOf("."))) {
      if (defined.has(`${s}.${name}`)) return `${s}.${name}`;
      if (s === "") return name;
    }
  };
  const qualify = (scope: string, messages: DescriptorProto[]) => {
    for (const m of messages) {
      const name = `${scope}.${m.name}`;
      for (const f of m.field) f.typeName = resolve(name, f.typeName);
      qualify(name, m.nestedType);
    }
  };
  qualify(root, file.messageType);
  for (const svc of file.service) {
    for (const method of svc.method) {
      method.inputType = resolve(root, method.inputType);
      method.outputType = resolve(root, method.outputType);
    }
  }
  return Buffer.from(toBinary(FileDescriptorProtoSchema, file));
}

/**
 * Mounts gRPC server reflection (v1 and v1alpha) so `grpcurl` can list and call every service.
 *
 * Reflection serves the file descriptors compiled into `@chalk/proto` (exactly what buf produced from
 * `proto/`), plus the health proto that `grpc-health-check` ships, loaded by `@grpc/proto-loader`.
 * Re-deriving the Chalk descriptors with proto-loader would lose cross-package references (a
 * container spec's `chalk.secrets.v1.SecretSource`), which breaks grpcurl.
 */
export function addReflection(server: ServiceHost, files: readonly DescFile[]): void {
  const healthDir = join(healthProtoPath, "..", "..", "..");
  const definition = loadSync(relative(healthDir, healthProtoPath), {
    includeDirs: [healthDir],
    keepCase: true,
  });
  for (const entry of Object.values(definition)) {
    const e = entry as { fileDescriptorProtos?: Buffer[] };
    if (e.fileDescriptorProtos) e.fileDescriptorProtos = e.fileDescriptorProtos.map(fixDescriptor);
  }
  definition["chalk.descriptors"] = {
    format: "Protocol Buffer 3 FileDescriptorProto",
    type: {},
    fileDescriptorProtos: withDependencies(files).map((f) =>
      Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)),
    ),
  } as unknown as (typeof definition)[string];
  new ReflectionService(definition).addToServer(server);
}

/**
 * Mounts the standard gRPC health service (`grpc.health.v1.Health`), open without a token so probes
 * work. Every service starts NOT_SERVING; the server turns them SERVING once it listens.
 */
export function addHealth(server: ServiceHost, serviceNames: readonly string[]): HealthImplementation {
  const health = new HealthImplementation({
    "": "NOT_SERVING",
    ...Object.fromEntries(serviceNames.map((s) => [s, "NOT_SERVING" as const])),
  });
  health.addToServer(server);
  return health;
}
