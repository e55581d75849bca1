import { PassThrough, type Readable } from "node:stream";

/**
 * How long, in milliseconds, a process's stdout and stderr stay open after the process exits. What
 * the process wrote before it exited is already in the pipe and is read at once; the window only
 * bounds how long output of background children that still hold the pipe (`sleep 100 &`) is
 * taken. Then the streams end, so an exec returns when its process exits, not when the last
 * background child does.
 */
export const OUTPUT_DRAIN_MS = 250;

/**
 * Most bytes read from one stream after the process exited. The exited process left at most a
 * pipe's worth (the socket pair's buffers, a few hundred KiB); the rest would be background
 * children's, which the drain does not wait for.
 */
const DRAIN_MAX_BYTES = 1024 * 1024;

/**
 * Bytes the consumer's stream buffers before the pipe is paused: room for the next reads to land
 * while the consumer takes the last, so the writer in the sandbox stalls less often on a full
 * socket. Still a bound. Measured in one interleaved A/B (bench/results/streaming-profile.md):
 * 0.85× of the raw floor with 64 KiB, 1.00× with 256 KiB; the full bench at a higher load did not
 * show the gain, so it is within what that machine's noise allows.
 */
const BUFFER_BYTES = 256 * 1024;

/** Longest line held back while it may be runsc's own message (see {@link ProcessOutput}). */
const MAX_HELD_BYTES = 4096;

/** Options for {@link ProcessOutput}. */
export interface ProcessOutputOptions {
  /**
   * A line runsc itself may write to this stream once the process runs: `runsc exec` prints a
   * failure to wait for the process (`waiting on pid 3: … urpc method "containerManager.WaitPID"
   * failed: EOF`, when the sandbox died under it) on its own stderr, which is the process's stderr.
   * A trailing line that starts with this prefix is held back until more output follows or the
   * process ends, and dropped when runsc reported that failure.
   */
  runscLinePrefix?: () => string | undefined;
}

/**
 * One output stream (stdout or stderr) of a process started by `runsc exec`. While the process
 * runs it is the pipe with its backpressure (a {@link BUFFER_BYTES} buffer, then the writer in the sandbox
 * stalls). Once the process has exited, {@link ProcessOutput.finish} reads what is left, ignoring
 * backpressure (at most {@link DRAIN_MAX_BYTES}), for at most {@link OUTPUT_DRAIN_MS}, then ends the
 * stream; bytes read stay for the consumer.
 */
export class ProcessOutput {
  /** What the consumer reads. */
  readonly stream: PassThrough;
  #held: Buffer = Buffer.alloc(0);
  #finishing = false;
  #sourceEnded = false;
  #done = false;
  #drained = 0;
  #dropRunscLine = false;

  constructor(
    private readonly source: Readable,
    private readonly options: ProcessOutputOptions = {},
  ) {
    this.stream = new PassThrough({ highWaterMark: BUFFER_BYTES });
    // Listen at once: Node discards the output of a child nobody listens to when it exits.
    source.on("data", (chunk: Buffer) => this.#onData(chunk));
    for (const event of ["end", "error", "close"]) source.once(event, () => this.#onSourceEnd());
  }

  #onData(chunk: Buffer): void {
    if (this.#done) return;
    if (this.#finishing) {
      this.#drained += chunk.byteLength;
      if (this.#drained > DRAIN_MAX_BYTES) {
        this.#end();
        return;
      }
    }
    const out = this.#filter(chunk);
    if (out.byteLength > 0 && !this.stream.write(out) && !this.#finishing) {
      // Backpressure while the process runs: stop reading until the consumer has caught up.
      this.source.pause();
      this.stream.once("drain", () => {
        if (!this.#done) this.source.resume();
      });
    }
  }

  /** Passes `chunk` on, holding back a trailing line that may be runsc's own. */
  #filter(chunk: Buffer): Buffer {
    const prefix = this.options.runscLinePrefix?.();
    if (prefix === undefined) return chunk;
    const data = this.#held.byteLength > 0 ? Buffer.concat([this.#held, chunk]) : chunk;
    const start = data.lastIndexOf(0x0a, data.byteLength - 2) + 1;
    const tail = data.subarray(start).toString("latin1");
    const candidate = tail.startsWith(prefix) || (prefix.startsWith(tail) && !tail.includes("\n"));
    if (candidate && data.byteLength - start <= MAX_HELD_BYTES) {
      this.#held = Buffer.from(data.subarray(start));
      return data.subarray(0, start);
    }
    this.#held = Buffer.alloc(0);
    return data;
  }

  #onSourceEnd(): void {
    this.#sourceEnded = true;
    // A held line is decided by how runsc ended: wait for finish() when it has not come yet.
    if (this.#finishing || this.#held.byteLength === 0) this.#end();
  }

  /**
   * The process has exited: read what is left for at most `drainMs`, then end the stream. With
   * `runscFailed`, a held-back runsc line at the end is dropped instead of passed on.
   */
  finish(options: { drainMs?: number; runscFailed?: boolean } = {}): void {
    if (this.#finishing) return;
    this.#finishing = true;
    this.#dropRunscLine = options.runscFailed ?? false;
    if (this.#sourceEnded) {
      this.#end();
      return;
    }
    // Read everything the pipe holds now, whatever the consumer's pace.
    this.source.resume();
    // Ended from setImmediate, after the event loop's next poll phase: when this process was too
    // busy to read during the window, what is already in the pipe is still read before the end.
    const timer = setTimeout(() => setImmediate(() => this.#end()), options.drainMs ?? OUTPUT_DRAIN_MS);
    this.stream.once("close", () => clearTimeout(timer));
  }

  #end(): void {
    if (this.#done) return;
    this.#done = true;
    const held = this.#held;
    this.#held = Buffer.alloc(0);
    const prefix = this.options.runscLinePrefix?.();
    const runscLine = prefix !== undefined && held.toString("latin1").startsWith(prefix);
    if (held.byteLength > 0 && !(this.#dropRunscLine && runscLine)) this.stream.write(held);
    this.stream.end();
    // Background children may still hold the pipe: let go of it.
    this.source.destroy();
  }
}
