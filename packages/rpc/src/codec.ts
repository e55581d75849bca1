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

/** Parses bytes into a message of `schema`; a malformed body is invalid_argument. */
export function deserializer(schema: DescMessage): (bytes: Buffer) => unknown {
  return (bytes) => {
    try {
      return fromBinary(schema, bytes);
    } catch (err) {
      throw new ChalkError(Code.InvalidArgument, `malformed ${schema.typeName} message`, { cause: err });
    }
  };
}

/** The gRPC path of a method: `/chalk.sandbox.v1.SandboxService/Exec`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** The grpc-js method definition of a protobuf-es method. */
export function methodDefinition(method: DescMethod): grpc.MethodDefinition<unknown, unknown> {
  return {
    path: methodPath(method),
    originalName: method.localName,
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: serializer(method.input),
    requestDeserialize: deserializer(method.input),
    responseSerialize: serializer(method.output),
    responseDeserialize: deserializer(method.output),
  };
}

/** A grpc-js status error, or anything with a numeric code and details. */
interface StatusLike {
  code?: unknown;
  details?: unknown;
  message?: unknown;
}

/** Turns a grpc-js client error into a ChalkError with the same code and the server's message. */
export function errorFromStatus(err: unknown): ChalkError {
  if (err instanceof ChalkError) return err;
  const s = (err ?? {}) as StatusLike;
  if (typeof s.code === "number" && s.code > 0 && s.code <= 16) {
    const details = typeof s.details === "string" && s.details !== "" ? s.details : String(s.message ?? "");
    return new ChalkError(s.code as Code, details, { cause: err });
  }
  return ChalkError.from(err);
}

/** The status a server sends for an error thrown by a handler. Only ChalkErrors keep their message. */
export function statusFromError(err: unknown, requestId: string): { code: number; details: string } {
  if (err instanceof ChalkError) return { code: err.code, details: err.message };
  return { code: Code.Internal, details: `[internal] internal error (request ${requestId})` };
}
