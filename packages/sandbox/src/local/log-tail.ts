import type { FileHandle } from "node:fs/promises";

/** Where the last lines of a log begin: in which of its files (newest first), at which byte. */
export interface TailStart {
  /** Index into the files given to {@link tailStart} (0: the newest). */
  file: number;
  /** Byte offset in that file. */
  offset: number;
}

/**
 * Where the last `lines` lines of a log kept in several files begin, scanning them newest first and
 * backwards in 64 KiB reads (memory stays bounded whatever the log's size). A final line without a
 * newline counts as a line. Fewer lines than asked: the start of the oldest file. Missing files
 * (undefined) are skipped.
 */
export async function tailStart(
  files: readonly (FileHandle | undefined)[],
  lines: number,
): Promise<TailStart> {
  let newlines = 0;
  let last = true;
  let oldest = 0;
  const buf = Buffer.alloc(64 * 1024);
  for (const [index, fh] of files.entries()) {
    if (!fh) continue;
    oldest = index;
    const size = (await fh.stat()).size;
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - buf.length);
      const { bytesRead } = await fh.read(buf, 0, end - start, start);
      for (let i = bytesRead - 1; i >= 0; i--) {
        if (buf[i] !== 0x0a) continue;
        // The newline that ends the very last line does not start a line after it.
        if (last && start + i === size - 1) continue;
        newlines++;
        if (newlines === lines) return { file: index, offset: start + i + 1 };
      }
      last = false;
      end = start;
    }
    if (size > 0) last = false;
  }
  return { file: oldest, offset: 0 };
}
