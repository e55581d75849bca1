import { join } from "node:path";
import { readInitLog } from "@chalk/sandbox/local";

/**
 * The local backend's kept logs: one file per container under a directory of the data dir
 * (`<id>.log`, plus `<id>.log.1` once rotated). The runtime's log writer (`chalk-log-writer`, in the
 * sandbox's detached wrapper) writes them and keeps each under `2 × maxBytes` by itself, so nothing
 * here runs in the background; reading follows rotations by open handle (`readInitLog`).
 */
export class LocalLogStore {
  constructor(
    readonly dir: string,
    /** The size bound of one log file, in bytes (the runtime's `logMaxBytes`). */
    readonly maxBytes: number,
  ) {}

  /** The log file of a container. */
  path(id: string): string {
    return join(this.dir, `${id}.log`);
  }

  /**
   * A container's log: what is kept (or its last `tailLines` lines), then, with `follow`, new
   * output until `done()`.
   */
  read(
    id: string,
    options: {
      follow: boolean;
      done: () => boolean;
      signal: AbortSignal;
      tailLines?: number;
      pollMs?: number;
    },
  ): AsyncIterable<Uint8Array> {
    return readInitLog(this.path(id), options);
  }
}
