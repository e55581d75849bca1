import * as grpc from "@grpc/grpc-js";

/**
 * Default of {@link ServerCreateOptions.maxUnaryReadsPerConnection}: request messages of unary and
 * server-streaming calls that one connection may have in the middle of arriving at once.
 */
export const DEFAULT_MAX_UNARY_READS_PER_CONNECTION = 4;

/** Reads in progress on one connection, and the calls waiting for their turn (FIFO). */
interface ConnectionReads {
  active: number;
  waiting: Array<() => void>;
}

/**
 * Bounds the request bytes a connection holds before any handler runs. grpc-js reads a unary call's
 * whole request message (up to the message limit) before the handler can refuse it, so N calls in
 * flight on one connection cost N messages of memory whatever the handlers' own bounds. This
 * interceptor lets a unary or server-streaming call start reading its request only when fewer than
 * `limit` such reads are in progress on its connection (keyed by the peer `address:port`); the
 * others wait with their HTTP/2 streams paused, so flow control holds their bytes on the client
 * (one stream window, 64 KiB, each). A read ends when its message has arrived, the client
 * half-closes, or the call is cancelled. Streaming-request methods are not held back: they read
 * one message at a time, and a long-lived stream idle between messages must not take a turn.
 *
 * In-flight request memory per connection is therefore at most `limit` × the message limit for
 * these calls, plus a window per waiting stream.
 */
export function unaryReadBudget(limit: number): grpc.ServerInterceptor {
  const connections = new Map<string, ConnectionReads>();
  const acquire = (peer: string, go: () => void): (() => void) => {
    let c = connections.get(peer);
    if (!c) {
      c = { active: 0, waiting: [] };
      connections.set(peer, c);
    }
    const conn = c;
    let state: "waiting" | "active" | "done" = "waiting";
    const start = () => {
      state = "active";
      conn.active++;
      go();
    };
    if (conn.active < limit) start();
    else conn.waiting.push(start);
    return () => {
      if (state === "waiting") {
        const i = conn.waiting.indexOf(start);
        if (i >= 0) conn.waiting.splice(i, 1);
      } else if (state === "active") {
        conn.active--;
        conn.waiting.shift()?.();
      }
      state = "done";
      if (conn.active === 0 && conn.waiting.length === 0) connections.delete(peer);
    };
  };
  return (method, call) => {
    if (method.requestStream) return new grpc.ServerInterceptingCall(call);
    const read: { release?: () => void } = {};
    const release = () => read.release?.();
    const responder = new grpc.ResponderBuilder()
      .withStart((next) =>
        next(
          new grpc.ServerListenerBuilder()
            .withOnReceiveMessage((message, nextMessage) => {
              release();
              nextMessage(message);
            })
            .withOnReceiveHalfClose((nextHalfClose) => {
              release();
              nextHalfClose();
            })
            // grpc-js calls the next listener's onCancel itself.
            .withOnCancel(release)
            .build(),
        ),
      )
      .build();
    return new (class extends grpc.ServerInterceptingCall {
      override startRead(): void {
        if (read.release) super.startRead();
        // Deferred, so `read.release` is set before the message can arrive and release it.
        else read.release = acquire(call.getPeer(), () => queueMicrotask(() => super.startRead()));
      }
    })(call, responder);
  };
}
