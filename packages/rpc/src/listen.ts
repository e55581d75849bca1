import { ChalkError, Code } from "@chalk/core";
import * as grpc from "@grpc/grpc-js";
import { MAX_MESSAGE_BYTES } from "./headers.js";

/** Options for {@link listen}. */
export interface ListenOptions {
  /** `host:port`; port 0 picks a free one. */
  address: string;
  /** Called with the server before it binds, to mount services. */
  register(server: grpc.Server): void;
}

/**
 * Creates a grpc-js server with Chalk's limits, lets `register` mount services, binds it and
 * returns it with the bound address (`127.0.0.1:41234`). Insecure credentials: bind to loopback
 * or a private network, or front it with TLS.
 */
export async function listen(options: ListenOptions): Promise<{ server: grpc.Server; address: string }> {
  const server = new grpc.Server({
    "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
  });
  options.register(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(options.address, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err
        ? reject(
            new ChalkError(Code.Unavailable, `cannot listen on ${options.address}: ${err.message}`, {
              cause: err,
            }),
          )
        : resolve(p),
    ),
  );
  const host = options.address.slice(0, options.address.lastIndexOf(":"));
  return { server, address: `${host}:${port}` };
}
