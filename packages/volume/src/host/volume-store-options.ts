import { isAbsolute } from "node:path";
import { z } from "zod";
import type { VolumeFileInfo } from "../types.js";

/** Bytes per chunk of a streamed read, unless configured otherwise. */
export const DEFAULT_READ_CHUNK_BYTES = 256 * 1024;

/** @internal The shape of {@link VolumeStoreOpenOptions}, checked at open. */
export const openOptionsSchema = z.object({
  dataDir: z.string().refine(isAbsolute, "must be an absolute path"),
  readChunkBytes: z
    .number()
    .int()
    .min(4096)
    .max(4 * 1024 * 1024)
    .optional(),
  quotaBytes: z.number().optional(),
});

/** Options for {@link VolumeStore.open}. */
export interface VolumeStoreOpenOptions {
  /**
   * Absolute host directory that holds every volume of every environment; created (mode 0711) when
   * missing. Must be one file system: writes are renamed into place from a staging area inside it.
   */
  dataDir: string;
  /** Bytes per chunk of a streamed read (4 KiB – 4 MiB). Default 256 KiB. */
  readChunkBytes?: number;
  /**
   * Quota of each volume created from now on, in bytes (16 MiB to 16 TiB): the volume is a file
   * system of that size of its own (see `volume-disks.ts`), so a write past it fails, in the API
   * with `resource_exhausted` and in a sandbox with ENOSPC. Volumes made before keep none. Default:
   * none (volumes share the data directory's file system).
   */
  quotaBytes?: number;
}

/** Options for {@link VolumeStore.create}. */
export interface VolumeStoreCreateOptions {
  /** Return the existing volume instead of failing with already_exists. */
  existOk?: boolean;
}

/** Options for {@link VolumeStore.list} and {@link VolumeStore.listFiles}. */
export interface VolumeStoreListOptions {
  /** Entries per page. Default 100 for volumes, 1000 for files. */
  pageSize?: number;
  /** `nextPageToken` of the previous page; undefined for the first. */
  pageToken?: string | undefined;
}

/** Options for {@link VolumeStore.listFiles}. */
export interface VolumeStoreListFilesOptions extends VolumeStoreListOptions {
  /** String prefix of the paths to list (`"data/"`, `"data/a"`). Default: every file. */
  prefix?: string;
}

/** Options for {@link VolumeStore.putFile} and {@link VolumeStoreBatch.putFile}. */
export interface VolumeStorePutOptions {
  /** Permission bits of the new file. Default 0o644. */
  mode?: number;
  /** Expected size in bytes: a stream of another length fails and writes nothing. */
  size?: number | undefined;
  /** Aborts the write; nothing is written. */
  signal?: AbortSignal;
}

/** Options for {@link VolumeStore.removeFile}. */
export interface VolumeStoreRemoveOptions {
  /** Also remove a directory with everything below it. Default false: directories are refused. */
  recursive?: boolean;
}

/** What a file's content may be given as. */
export type VolumeFileSource = Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** An open file of a volume, streamed in chunks. Iterate it to the end or close it. */
export interface VolumeFileReader extends AsyncIterable<Uint8Array>, AsyncDisposable {
  /** The file as it was when opened. Later replacements do not affect this reader. */
  readonly info: VolumeFileInfo;
  /** Closes the file without reading further. */
  close(): Promise<void>;
}
