/**
 * Calls any RPC with raw request bytes, as a hostile client would: no serializer of ours runs, so
 * malformed bodies reach the server as they are.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

/** How a call ended: its status code and message, and how many response messages came first. */
export interface RawOutcome {
  code: grpc.status;
  details: string;
  responses: number;
}

const identity = (b: Buffer): Buffer => b;

/** A raw client of one server: one channel for every call. */
export class RawClient {
  readonly #client: grpc.Client;

  constructor(
    address: string,
    private readonly token: string,
  ) {
    this.#client = new grpc.Client(address, grpc.credentials.createInsecure(), {
      "grpc.max_send_message_length": 16 * 1024 * 1024,
      "grpc.max_receive_message_length": 16 * 1024 * 1024,
    });
  }

  close(): void {
    this.#client.close();
  }

  /**
   * Sends `requests` (exactly one for unary and server-streaming methods) to `method` in
   * `environment`, reads every response until the status, and gives up after `deadlineMs`
   * (deadline_exceeded, which the server may also answer for a call it keeps waiting).
   */
  call(method: DescMethod, requests: readonly Uint8Array[], environment: string, deadlineMs: number) {
    const path = `/${method.parent.typeName}/${method.name}`;
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${this.token}`);
    md.set("x-chalk-environment", environment);
    const options = { deadline: Date.now() + deadlineMs };
    const bodies = requests.map((r) => Buffer.from(r.buffer, r.byteOffset, r.byteLength));
    return new Promise<RawOutcome>((resolve) => {
      let responses = 0;
      const ended = (err: grpc.ServiceError | null) =>
        resolve({ code: err?.code ?? grpc.status.OK, details: err?.details ?? "", responses });
      const c = this.#client;
      switch (method.methodKind) {
        case "unary":
          c.makeUnaryRequest(path, identity, identity, bodies[0] ?? Buffer.alloc(0), md, options, (err) => {
            if (!err) responses++;
            ended(err);
          });
          return;
        case "client_streaming": {
          const call = c.makeClientStreamRequest(path, identity, identity, md, options, (err) => {
            if (!err) responses++;
            ended(err);
          });
          for (const b of bodies) call.write(b);
          call.end();
          return;
        }
        case "server_streaming": {
          const call = c.makeServerStreamRequest(
            path,
            identity,
            identity,
            bodies[0] ?? Buffer.alloc(0),
            md,
            options,
          );
          readToStatus(call, () => responses++, ended);
          return;
        }
        case "bidi_streaming": {
          const call = c.makeBidiStreamRequest(path, identity, identity, md, options);
          readToStatus(call, () => responses++, ended);
          for (const b of bodies) call.write(b);
          call.end();
          return;
        }
      }
    });
  }
}

function readToStatus(
  call: grpc.ClientReadableStream<unknown>,
  onData: () => void,
  ended: (err: grpc.ServiceError | null) => void,
) {
  let error: grpc.ServiceError | null = null;
  call.on("data", onData);
  call.on("error", (err: grpc.ServiceError) => {
    error = err;
  });
  call.on("status", (status: grpc.StatusObject) => {
    ended(
      status.code === grpc.status.OK
        ? null
        : (error ?? ({ ...status, message: status.details } as grpc.ServiceError)),
    );
  });
}
