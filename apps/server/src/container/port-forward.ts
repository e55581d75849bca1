import type { Duplex } from "node:stream";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import type { PortForwardRequest, PortForwardResponseSchema } from "@chalk/proto/container/v1";
import type { CallContext } from "@chalk/rpc";
import { checkContainerId, checkContainerName, checkPort } from "@chalk/spec";
import { requireCapability } from "../backend/compute-backend.js";
import type { ContainerRef } from "../backend/container-records.js";
import { unimplemented } from "../backend/unimplemented.js";
import type { ServerMetrics } from "../metrics.js";
import type { Containers } from "./containers.js";

/** The most bytes one `data` frame from a client may carry. */
export const PORT_FORWARD_MAX_FRAME_BYTES = 1024 * 1024;

type Response = MessageInitShape<typeof PortForwardResponseSchema>;

/** Resolves once `stream` can take more, or has closed. */
function drained(stream: Duplex): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.once("drain", done);
    stream.once("close", done);
  });
}

/** The container and port of a call's first message; invalid_argument naming the field otherwise. */
function openOf(first: PortForwardRequest | undefined): { ref: ContainerRef; port: number } {
  if (first?.frame.case !== "open") {
    throw invalidArgument("frame", "the first message must be open", "open { id | name, port }");
  }
  const open = first.frame.value;
  let ref: ContainerRef;
  if (open.ref.case === "id") ref = { id: checkContainerId(open.ref.value, "open.id") };
  else if (open.ref.case === "name") ref = { name: checkContainerName(open.ref.value, "open.name") };
  else throw invalidArgument("open.ref", "required", "an id or a name");
  const port = checkPort(open.port, "open.port");
  if (port === undefined) throw invalidArgument("open.port", "required", "an integer from 1 to 65535");
  return { ref, port };
}

/**
 * Opens the TCP connection a PortForward call asks for: a Running container of the caller's
 * environment that this server holds, at its own address (the backend dials nothing else).
 */
async function connect(
  containers: Containers,
  environment: string,
  ref: ContainerRef,
  port: number,
  signal: AbortSignal,
): Promise<Duplex> {
  requireCapability(containers.backend, "port-forward", ["local"]);
  const record = await containers.find(environment, ref);
  if (record.status !== "Running") {
    throw new ChalkError(
      Code.FailedPrecondition,
      `container ${JSON.stringify(record.name)} is ${record.status}; port forwarding needs a Running container`,
    );
  }
  const live = containers.live.get(record.id);
  if (!live) {
    throw new ChalkError(
      Code.Unavailable,
      `container ${JSON.stringify(record.name)}: the server does not hold it`,
    );
  }
  const open = live.container.connectPort?.bind(live.container);
  if (!open) throw unimplemented("port-forward", containers.backend.name, ["local"]);
  return open(port, signal);
}

/** Writes every `data` frame after `open` to the socket (awaiting drain), then half-closes it. */
async function upstream(requests: AsyncIterator<PortForwardRequest>, socket: Duplex): Promise<void> {
  for (;;) {
    const next = await requests.next();
    if (next.done) break;
    const frame = next.value.frame;
    if (frame.case !== "data") {
      throw invalidArgument(
        "frame",
        `${frame.case ?? "an empty frame"} after open`,
        "data frames after the first open",
      );
    }
    if (frame.value.byteLength > PORT_FORWARD_MAX_FRAME_BYTES) {
      throw invalidArgument(
        "data",
        `${frame.value.byteLength} bytes`,
        `at most ${PORT_FORWARD_MAX_FRAME_BYTES} per frame`,
      );
    }
    if (socket.destroyed) return;
    if (!socket.write(frame.value)) await drained(socket);
  }
  // The client half-closed: FIN to the container's port; reading goes on.
  socket.end();
}

/**
 * The PortForward call: one TCP connection to a port of a Running container, relayed both ways
 * with backpressure (each direction holds at most one frame and the sockets' own buffers:
 * the socket is read only as fast as gRPC sends, gRPC read only as fast as the socket drains).
 * Half-close travels both ways: the client's end of stream becomes a FIN, the container's FIN
 * becomes an `eof` frame; the call ends once both sides are done.
 */
export async function* portForward(
  containers: Containers,
  metrics: ServerMetrics,
  requests: AsyncIterable<PortForwardRequest>,
  ctx: CallContext,
): AsyncGenerator<Response> {
  const iterator = requests[Symbol.asyncIterator]();
  const first = await iterator.next();
  const { ref, port } = openOf(first.done ? undefined : first.value);
  const socket = await connect(containers, ctx.environment, ref, port, ctx.signal);
  // A socket error (a reset, a write after the container closed) destroys the socket, which ends
  // the read loop below with an error; this listener only keeps the event from being uncaught once
  // that loop has finished.
  socket.on("error", () => undefined);
  const onAbort = () => socket.destroy();
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  let failure: unknown;
  const up = upstream(iterator, socket).catch((err: unknown) => {
    failure = err;
    socket.destroy();
  });
  try {
    yield { frame: { case: "opened", value: {} } };
    try {
      for await (const chunk of socket.iterator({ destroyOnReturn: false })) {
        const data = chunk as Buffer;
        metrics.bytesStreamed.inc({ kind: "port_forward" }, data.byteLength);
        yield { frame: { case: "data", value: data } };
      }
    } catch (err) {
      if (failure) throw failure;
      throw new ChalkError(
        Code.Unavailable,
        `the connection to port ${port} broke: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      );
    }
    if (failure) throw failure;
    yield { frame: { case: "eof", value: {} } };
    await up;
    if (failure) throw failure;
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
    socket.destroy();
  }
}
