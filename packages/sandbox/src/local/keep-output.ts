import { PassThrough, type Readable } from "node:stream";

/**
 * Node discards the unread output of a child that exits before anything listens to its stdout or
 * stderr (it resumes such streams). Piping at once into a PassThrough keeps every byte and keeps
 * backpressure: `pipe` pauses the source while the PassThrough is full.
 */
export function keep(stream: Readable): Readable {
  const out = new PassThrough({ highWaterMark: 64 * 1024 });
  stream.pipe(out);
  stream.once("error", (err) => out.destroy(err));
  return out;
}
