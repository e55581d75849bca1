import { copyFile, open, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** The older half of a container's log, kept by {@link rotateLog}. */
export const rotatedPath = (logPath: string): string => `${logPath}.1`;

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw err;
  }
}

/**
 * Keeps a log file under `maxBytes`: when it is larger, its content moves to `<log>.1` (replacing the
 * older half) and the log is truncated in place. The runtime appends to the file (O_APPEND), so its
 * next write lands at the new end; at most `2 × maxBytes` of the newest output is kept on disk.
 * Returns true when it rotated.
 */
export async function rotateLog(logPath: string, maxBytes: number): Promise<boolean> {
  if ((await sizeOf(logPath)) <= maxBytes) return false;
  await copyFile(logPath, rotatedPath(logPath));
  await truncate(logPath, 0);
  return true;
}

async function* readRange(path: string, from: number, to: number): AsyncGenerator<Uint8Array> {
  if (to <= from) return;
  const fh = await open(path, "r").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (!fh) return;
  try {
    let pos = from;
    const chunk = 64 * 1024;
    while (pos < to) {
      const buf = Buffer.alloc(Math.min(chunk, to - pos));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/** Options for {@link readLog}. */
export interface LogReadOptions {
  /** Keep reading new output until `done()` says the writer has ended. */
  follow: boolean;
  /** True once nothing will be appended any more (the entrypoint ended). */
  done: () => boolean;
  /** Stops following. */
  signal: AbortSignal;
  /** Poll interval while following, in milliseconds. */
  pollMs?: number;
  /** Start with only the last this many lines of what was kept (0 or undefined: everything). */
  tailLines?: number;
}

/** A position in the log: in the rotated older half (`old`) or the current file. */
interface LogPosition {
  file: "old" | "current";
  offset: number;
}

/**
 * Where the last `lines` lines of the kept log begin, scanning both halves backwards in 64 KiB
 * reads (memory stays bounded whatever the log's size). A final line without a newline counts as
 * a line.
 */
export async function tailStart(logPath: string, lines: number): Promise<LogPosition> {
  const halves = [
    { file: "current" as const, path: logPath, size: await sizeOf(logPath) },
    { file: "old" as const, path: rotatedPath(logPath), size: await sizeOf(rotatedPath(logPath)) },
  ];
  let newlines = 0;
  let last = true;
  for (const half of halves) {
    if (half.size === 0) continue;
    const fh = await open(half.path, "r").catch(() => undefined);
    if (!fh) continue;
    try {
      const buf = Buffer.alloc(64 * 1024);
      let end = half.size;
      while (end > 0) {
        const start = Math.max(0, end - buf.length);
        const { bytesRead } = await fh.read(buf, 0, end - start, start);
        for (let i = bytesRead - 1; i >= 0; i--) {
          if (buf[i] !== 0x0a) continue;
          // The newline that ends the very last line does not start a line after it.
          if (last && start + i === half.size - 1) continue;
          newlines++;
          if (newlines === lines) return { file: half.file, offset: start + i + 1 };
        }
        last = false;
        end = start;
      }
    } finally {
      await fh.close();
    }
    last = false;
  }
  return { file: "old", offset: 0 };
}

/**
 * Reads a container's log: the rotated older half, then the current file (or only their last
 * `tailLines` lines); with `follow`, then new output as it is appended, across rotations, until
 * `done()` and everything written was sent.
 */
export async function* readLog(logPath: string, options: LogReadOptions): AsyncGenerator<Uint8Array> {
  const old = rotatedPath(logPath);
  const start: LogPosition = options.tailLines
    ? await tailStart(logPath, options.tailLines)
    : { file: "old", offset: 0 };
  if (start.file === "old") yield* readRange(old, start.offset, await sizeOf(old));
  let offset = start.file === "current" ? start.offset : 0;
  for (;;) {
    const finished = options.done();
    const size = await sizeOf(logPath);
    if (size < offset) {
      // Rotated since the last read: what we had not read yet is the tail of `<log>.1`.
      yield* readRange(old, offset, await sizeOf(old));
      offset = 0;
      continue;
    }
    if (size > offset) {
      yield* readRange(logPath, offset, size);
      offset = size;
      continue;
    }
    if (!options.follow || finished || options.signal.aborted) return;
    await sleep(options.pollMs ?? 200, undefined, { signal: options.signal }).catch(() => undefined);
  }
}

/**
 * The local backend's kept logs: one file per container under a directory of the data dir
 * (`<id>.log`, plus `<id>.log.1` once rotated), written by the runtime (O_APPEND) and kept under
 * `2 × maxBytes` by a rotation every `intervalMs` while the container runs.
 */
export class LocalLogStore {
  readonly #running = new Set<string>();
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly dir: string,
    readonly maxBytes: number,
    intervalMs = 2000,
  ) {
    this.#timer = setInterval(() => {
      for (const id of this.#running) rotateLog(this.path(id), maxBytes).catch(() => undefined);
    }, intervalMs);
    this.#timer.unref();
  }

  /** The log file of a container. */
  path(id: string): string {
    return join(this.dir, `${id}.log`);
  }

  /** Keeps a running container's log under its bound. */
  track(id: string): void {
    this.#running.add(id);
  }

  /** Stops rotating a container's log (it ended). */
  untrack(id: string): void {
    this.#running.delete(id);
  }

  read(
    id: string,
    options: { follow: boolean; done: () => boolean; signal: AbortSignal; tailLines?: number },
  ): AsyncIterable<Uint8Array> {
    return readLog(this.path(id), options);
  }

  /** Stops the rotation timer. */
  close(): void {
    clearInterval(this.#timer);
  }
}
