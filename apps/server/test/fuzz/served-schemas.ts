/**
 * What a running server serves, asked through gRPC reflection as grpcurl would: the names of its
 * services and the file descriptors that define them, as a protobuf-es registry. The fuzz harness
 * takes its RPCs from here, so a service or method added to the server is fuzzed without a change.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { create, createFileRegistry, type DescService, fromBinary, type Registry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";

const require = createRequire(import.meta.url);

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_message: string };
}

/** The services a server serves (by reflection) and a registry of every type they use. */
export async function servedSchemas(
  address: string,
): Promise<{ services: DescService[]; registry: Registry; names: string[] }> {
  const dir = join(require.resolve("@grpc/reflection"), "../../proto");
  const def = loadSync("grpc/reflection/v1/reflection.proto", { includeDirs: [dir], keepCase: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
  };
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
  const call = (
    client as unknown as { ServerReflectionInfo: () => grpc.ClientDuplexStream<object, ReflectionResponse> }
  ).ServerReflectionInfo();
  const ask = (request: object) =>
    new Promise<ReflectionResponse>((resolve, reject) => {
      call.once("data", resolve);
      call.once("error", reject);
      call.write(request);
    });
  try {
    const listed = await ask({ list_services: "*" });
    const names = (listed.list_services_response?.service ?? []).map((s) => s.name);
    const files = new Map<string, Buffer>();
    for (const name of names) {
      const res = await ask({ file_containing_symbol: name });
      if (res.error_response) throw new Error(`reflection: ${name}: ${res.error_response.error_message}`);
      for (const bytes of res.file_descriptor_response?.file_descriptor_proto ?? []) {
        const proto = fromBinary(FileDescriptorProtoSchema, bytes);
        files.set(proto.name, bytes);
      }
    }
    const set = create(FileDescriptorSetSchema, {
      file: [...files.values()].map((b) => fromBinary(FileDescriptorProtoSchema, b)),
    });
    const registry = createFileRegistry(set);
    const services = names.flatMap((n) => {
      const s = registry.getService(n);
      return s ? [s] : [];
    });
    return { services, registry, names };
  } finally {
    call.end();
    client.close();
  }
}
