import type { Readable } from "node:stream";

/**
 * Most bytes of output per exec message. Each message costs a protobuf encoding, a gRPC frame and
 * an event-loop turn on both sides; what the process wrote while the previous message was on its
 * way goes out as one message up to this size, instead of one message per 64 KiB pipe read.
 */
export const MAX_OUTPUT_MESSAGE_BYTES = 256 * 1024;

/**
 * A stream's chunks, each joined with what is already buffered behind it, up to
 * {@link MAX_OUTPUT_MESSAGE_BYTES} (plus at most one buffer's worth, a message past the limit being
 * made of whole reads). Never waits for more data than is there: a lone line goes out at once.
 */
export async function* coalesced(stream: Readable): AsyncGenerator<Uint8Array> {
  for await (const first of stream) {
    const parts: Uint8Array[] = [first];
    let size = (first as Uint8Array).byteLength;
    while (size < MAX_OUTPUT_MESSAGE_BYTES) {
      const more: Uint8Array | null = stream.read();
      if (more === null) break;
      parts.push(more);
      size += more.byteLength;
    }
    yield parts.length === 1 ? (first as Uint8Array) : Buffer.concat(parts, size);
  }
}
