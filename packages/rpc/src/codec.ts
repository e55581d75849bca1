import { create, type DescMessage, type DescMethod, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ChalkError, Code } from "@chalk/core";
import type * as grpc from "@grpc/grpc-js";

/** Serializes a message (or its init shape) of `schema` to bytes. */
export function serializer(schema: DescMessage): (value: unknown) => Buffer {
  return (value) => {
    const msg = create(schema, value as never);
    const bytes = toBinary(schema, msg);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

/** protobuf-es's reason for refusing bytes, bounded; it names wire types and lengths, never content. */
function reasonOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/[^\x20-\x7e]/g, "?").slice(0, 120);
}

/** Parses bytes into a message of `schema`; a malformed body is invalid_argument. */
export function deserializer(schema: DescMessage): (bytes: Buffer) => unknown {
  return (bytes) => {
    try {
      return fromBinary(schema, bytes);
    } catch (err) {
      throw new ChalkError(
        Code.InvalidArgument,
        `request: not a valid ${schema.typeName} message (${reasonOf(err)})`,
        { field: "request", cause: err },
      );
    }
  };
}

/** The gRPC path of a method: `/chalk.sandbox.v1.SandboxService/Exec`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

const raw = (bytes: Buffer): Buffer => bytes;

/**
 * The grpc-js method definition of a protobuf-es method, for a server. Requests arrive as raw bytes:
 * grpc-js runs its deserializer before any handler and answers its failures with internal "Error
 * deserializing request", so the adapter decodes each request itself, after the interceptors (auth)
 * ran, and a malformed one fails the call with invalid_argument.
 */
export function methodDefinition(method: DescMethod): grpc.MethodDefinition<unknown, unknown> {
  return {
    path: methodPath(method),
    originalName: method.localName,
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: raw as (value: unknown) => Buffer,
    requestDeserialize: raw,
    responseSerialize: serializer(method.output),
    responseDeserialize: deserializer(method.output),
  };
}
