import { type FileHandle, open } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { tailStart } from "./log-tail.js";

/**
 * The older half of an init's log: `chalk-log-writer` renames the log to this when it is full and
 * starts a new one, so the two hold at most `2 × logMaxBytes`, the newest output.
 */
export const rotatedLogPath = (logPath: string): string => `${logPath}.1`;

/** Options for {@link readInitLog}. */
export interface InitLogReadOptions {
  /** Keep reading new output until `done()` says the writer has ended. Default false. */
  follow?: boolean;
  /**
   * True once nothing will be written any more (the init ended: its sandbox's `wait()` resolved,
   * or a host's record says so). Read once more after it turns true, so nothing is missed.
   */
  done?: () => boolean;
  /** Stops reading. */
  signal?: AbortSignal;
  /** Poll interval while following, in milliseconds. Default 200. */
  pollMs?: number;
  /** Bytes per chunk read. Default 64 KiB. */
  chunkBytes?: number;
  /** Start with only the last this many lines of what is kept (0 or undefined: everything). */
  tailLines?: number;
}

async function openIfThere(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** A file's identity: its inode and birth time (an inode number alone is reused once freed). */
async function identity(fh: FileHandle): Promise<string> {
  const st = await fh.stat();
  return `${st.ino}:${st.birthtimeMs}`;
}

async function identityOf(path: string): Promise<string | undefined> {
  const fh = await openIfThere(path);
  if (!fh) return undefined;
  try {
    return await identity(fh);
  } finally {
    await fh.close();
  }
}

/** Reads an open file from `pos` to its current end. */
async function* readToEnd(
  fh: FileHandle,
  from: number,
  chunkBytes: number,
): AsyncGenerator<Uint8Array, number> {
  let pos = from;
  for (;;) {
    const buf = Buffer.allocUnsafe(chunkBytes);
    const { bytesRead } = await fh.read(buf, 0, chunkBytes, pos);
    if (bytesRead === 0) return pos;
    pos += bytesRead;
    yield buf.subarray(0, bytesRead);
  }
}

/**
 * Reads a sandbox init's log as `chalk-log-writer` keeps it (`logPath`, and `<logPath>.1` once it
 * rotated): the older half, then the current file (or only their last `tailLines` lines); with `follow`, then new output as it is
 * written, until `done()`. Files are followed by their open handle, so a rotation loses nothing:
 * the file being read is finished (the writer closed it before renaming it) before the next one is
 * opened, and a reader that fell a whole file behind still reads the file now at `.1`. A reader more
 * than two files behind has lost the oldest of it to the bound.
 */
export async function* readInitLog(
  logPath: string,
  options: InitLogReadOptions = {},
): AsyncGenerator<Uint8Array> {
  const chunk = options.chunkBytes ?? 64 * 1024;
  const old = rotatedLogPath(logPath);
  let current = await openIfThere(logPath);
  // Files read to their end, by inode: never read twice.
  const consumed = new Set<string>();
  try {
    // The older half first, unless a rotation between the two opens made it the file we hold.
    let older = await openIfThere(old);
    if (older && current && (await identity(older)) === (await identity(current))) {
      await older.close();
      older = undefined;
    }
    let pos = 0;
    let olderFrom = 0;
    let readOlder = true;
    if (options.tailLines) {
      const start = await tailStart([current, older], options.tailLines);
      if (start.file === 0) {
        pos = start.offset;
        readOlder = false;
      } else olderFrom = start.offset;
    }
    if (older) {
      try {
        if (readOlder) yield* readToEnd(older, olderFrom, chunk);
        consumed.add(await identity(older));
      } finally {
        await older.close();
      }
    }
    for (;;) {
      const finished = options.done?.() ?? true;
      if (current) pos = yield* readToEnd(current, pos, chunk);
      const ino = current ? await identity(current) : undefined;
      const now = await identityOf(logPath);
      if (now !== undefined && now !== ino) {
        // Rotated. What we hold is complete (the writer closed it before the rename): read its end.
        if (current) {
          yield* readToEnd(current, pos, chunk);
          await current.close();
          if (ino !== undefined) consumed.add(ino);
        }
        // Two rotations while we read: the one in between is now at `.1`.
        const between = await openIfThere(old);
        if (between) {
          try {
            const b = await identity(between);
            if (!consumed.has(b) && b !== now) {
              yield* readToEnd(between, 0, chunk);
              consumed.add(b);
            }
          } finally {
            await between.close();
          }
        }
        current = await openIfThere(logPath);
        pos = 0;
        continue;
      }
      if (!options.follow || finished || options.signal?.aborted) return;
      await sleep(options.pollMs ?? 200, undefined, { signal: options.signal }).catch(() => undefined);
      if (!current) current = await openIfThere(logPath);
    }
  } finally {
    await current?.close();
  }
}
