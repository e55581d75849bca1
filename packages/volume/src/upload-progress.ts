import type { UploadEntry } from "./upload-source.js";

/** How far an upload is, reported to {@link VolumeUploadOptions.onProgress} as its bytes are sent. */
export interface VolumeUploadProgress {
  /** Bytes handed to the connection so far (it applies backpressure, so this follows the server). */
  bytesSent: number;
  /** Bytes of every file of the upload, from their sizes when it started. */
  bytesTotal: number;
  /** Files sent completely. */
  filesSent: number;
  /** Files in the upload. */
  filesTotal: number;
  /** Volume path of the file being sent (the last one once all are sent). */
  path: string;
}

/** Options of uploads that report progress: `putFileFromPath`, `putDir`, `batchUpload`. */
export interface VolumeUploadOptions {
  /**
   * Called after each chunk (at most 256 KiB) is sent, and once with `filesSent === filesTotal`
   * when everything was sent. A retried upload (the volume was deleted meanwhile) starts at 0 again.
   */
  onProgress?: (progress: VolumeUploadProgress) => void;
}

/**
 * Wraps upload entries so that reading their chunks reports progress. `restart()` sets the counts
 * back to zero, for an upload that is sent again.
 */
export function trackUpload(
  entries: readonly UploadEntry[],
  onProgress: VolumeUploadOptions["onProgress"],
): { entries: UploadEntry[]; restart(): void } {
  if (!onProgress) return { entries: [...entries], restart() {} };
  const files = entries.filter((e) => !e.directory);
  const bytesTotal = files.reduce((n, e) => n + (e.size ?? 0), 0);
  const state = { bytesSent: 0, filesSent: 0 };
  const report = (path: string) => onProgress({ ...state, bytesTotal, filesTotal: files.length, path });
  return {
    // Directories carry no bytes and are not counted as files.
    entries: entries.map((e) =>
      e.directory
        ? e
        : {
            ...e,
            async *chunks() {
              for await (const chunk of e.chunks()) {
                yield chunk;
                state.bytesSent += chunk.byteLength;
                report(e.path);
              }
              state.filesSent += 1;
              report(e.path);
            },
          },
    ),
    restart() {
      state.bytesSent = 0;
      state.filesSent = 0;
    },
  };
}
