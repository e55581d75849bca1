import type { MessageInitShape } from "@bufbuild/protobuf";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import {
  ContainerFileService,
  FileEventType,
  type FileStat,
  FileType,
  type WriteFileRequestSchema,
} from "@chalk/proto/container/v1/files";
import { type Client, createClient, type Transport } from "@chalk/rpc";

/** What kind of entry a path is. */
export type FileKind = "file" | "directory" | "symlink" | "other";

/** A path's stat, as the container sees it. */
export interface FileInfo {
  /** The entry's name (last path component). */
  name: string;
  /** What it is; a symlink is reported as itself, not followed. */
  type: FileKind;
  /** Size in bytes. */
  size: number;
  /** Permission bits (`0o644`). */
  mode: number;
  /** When it was last modified. */
  modifiedAt: Date;
  /** A symlink's target. */
  target?: string;
}

/** One change `watch` reports. */
export interface FileEvent {
  /** `create` (made or moved in), `modify` (written), `delete` (removed or moved away). */
  type: "create" | "modify" | "delete";
  /** The container path the event is about. */
  path: string;
}

/** A running watch: iterate its events; `close()` ends it. */
export interface FileWatch extends AsyncIterable<FileEvent>, AsyncDisposable {
  /** Ends the watch (the iteration ends). */
  close(): Promise<void>;
}

/** What `writeFile` takes: bytes, text (UTF-8), or a stream of bytes for large files. */
export type FileData = Uint8Array | string | AsyncIterable<Uint8Array>;

/** The most bytes `writeFile` sends per message. */
const WRITE_CHUNK = 256 * 1024;

const KINDS: Record<number, FileKind> = {
  [FileType.FILE]: "file",
  [FileType.DIRECTORY]: "directory",
  [FileType.SYMLINK]: "symlink",
  [FileType.OTHER]: "other",
};

const EVENT_TYPES: Record<number, FileEvent["type"]> = {
  [FileEventType.CREATE]: "create",
  [FileEventType.MODIFY]: "modify",
  [FileEventType.DELETE]: "delete",
};

function infoOf(s: FileStat | undefined): FileInfo {
  if (!s) throw new ChalkError(Code.Internal, "the server sent no stat");
  return {
    name: s.name,
    type: KINDS[s.type] ?? "other",
    size: Number(s.size),
    mode: s.mode,
    modifiedAt: new Date(Number(s.modifiedAtMs)),
    ...(s.target ? { target: s.target } : {}),
  };
}

function checkPathArg(path: unknown, field = "path"): string {
  if (typeof path !== "string" || !path.startsWith("/")) {
    throw invalidArgument(
      field,
      `${JSON.stringify(path)} is not an absolute path`,
      'an absolute path such as "/app/data.txt"',
    );
  }
  return path;
}

async function* chunksOf(data: FileData): AsyncGenerator<Uint8Array> {
  if (typeof data === "string" || data instanceof Uint8Array) {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    for (let off = 0; off < bytes.byteLength; off += WRITE_CHUNK)
      yield bytes.subarray(off, off + WRITE_CHUNK);
    return;
  }
  for await (const chunk of data) {
    for (let off = 0; off < chunk.byteLength; off += WRITE_CHUNK)
      yield chunk.subarray(off, off + WRITE_CHUNK);
  }
}

/**
 * The files API of a running container (`c.fs`): container paths, the container's own
 * permissions, no process per call (the server runs one helper process inside the container,
 * started on first use). Errors are ChalkErrors whose message names the path: not_found,
 * permission_denied, already_exists, failed_precondition (not a directory, a directory, not empty,
 * a container that is not Running), invalid_argument (a path that is not absolute and normalized),
 * unimplemented on a backend without the files API.
 */
export class ContainerFs {
  readonly #client: Client<typeof ContainerFileService>;
  readonly #ref: () => { case: "id"; value: string };

  constructor(transport: Transport, containerId: () => string) {
    this.#client = createClient(ContainerFileService, transport);
    this.#ref = () => ({ case: "id", value: containerId() });
  }

  /** A file's bytes in full (UTF-8 text with `{ encoding: "utf8" }`); use `readStream` for large files. */
  async readFile(path: string): Promise<Uint8Array>;
  async readFile(path: string, options: { encoding: "utf8" }): Promise<string>;
  async readFile(path: string, options?: { encoding?: "utf8" }): Promise<Uint8Array | string> {
    const chunks: Uint8Array[] = [];
    for await (const c of this.readStream(path)) chunks.push(c);
    const bytes = Buffer.concat(chunks);
    return options?.encoding === "utf8" ? bytes.toString("utf8") : new Uint8Array(bytes);
  }

  /**
   * A file's bytes as they arrive, in chunks of at most 256 KiB, with backpressure: a reader that
   * stops reading stalls the transfer (the server holds at most 4 MiB of it).
   */
  async *readStream(path: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<Uint8Array> {
    checkPathArg(path);
    const stream = this.#client.readFile({ container: { ref: this.#ref() }, path }, options);
    for await (const res of stream) yield res.data;
  }

  /**
   * Writes a file from bytes, text or a stream of bytes (`mode`, default `0o644`, for a new file).
   * The bytes go to a temporary file beside `path`, renamed over it when complete: a reader never
   * sees a partial file, and a failed write keeps the old one. Resolves to the new file's stat.
   */
  async writeFile(path: string, data: FileData, options: { mode?: number } = {}): Promise<FileInfo> {
    checkPathArg(path);
    const mode = options.mode ?? 0;
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
      throw invalidArgument("mode", `${mode} is not a permission mode`, "0 to 0o7777, such as 0o644");
    }
    const ref = this.#ref();
    async function* requests(): AsyncGenerator<MessageInitShape<typeof WriteFileRequestSchema>> {
      yield { frame: { case: "start", value: { container: { ref }, path, mode } } };
      for await (const chunk of chunksOf(data)) yield { frame: { case: "data", value: chunk } };
    }
    return infoOf((await this.#client.writeFile(requests())).stat);
  }

  /** A directory's entries with their stat. */
  async list(path: string): Promise<FileInfo[]> {
    checkPathArg(path);
    const res = await this.#client.listFiles({ container: { ref: this.#ref() }, path });
    return res.entries.map(infoOf);
  }

  /** A path's stat (a symlink is reported as itself). */
  async stat(path: string): Promise<FileInfo> {
    checkPathArg(path);
    return infoOf((await this.#client.statFile({ container: { ref: this.#ref() }, path })).stat);
  }

  /**
   * Creates a directory and, as `mkdir -p`, its missing parents (no error when it exists); with
   * `{ recursive: false }`, only the directory itself (already_exists when it does).
   */
  async mkdir(path: string, options: { recursive?: boolean; mode?: number } = {}): Promise<void> {
    checkPathArg(path);
    await this.#client.makeDirectory({
      container: { ref: this.#ref() },
      path,
      parents: options.recursive ?? true,
      mode: options.mode ?? 0,
    });
  }

  /** Removes a file, symlink or empty directory; with `{ recursive: true }`, a directory and its contents. */
  async remove(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    checkPathArg(path);
    await this.#client.removeFile({
      container: { ref: this.#ref() },
      path,
      recursive: options.recursive ?? false,
    });
  }

  /** Renames (moves) `from` to `to`, replacing a file at `to`. */
  async rename(from: string, to: string): Promise<void> {
    checkPathArg(from, "from");
    checkPathArg(to, "to");
    await this.#client.renameFile({ container: { ref: this.#ref() }, from, to });
  }

  /**
   * Watches a directory's entries (or one file): resolves once the watch is in place, then yields
   * create, modify and delete events until `close()` (or `signal`). A consumer more than 1024
   * events behind ends the watch with resource_exhausted.
   */
  async watch(path: string, options: { signal?: AbortSignal } = {}): Promise<FileWatch> {
    checkPathArg(path);
    const ac = new AbortController();
    options.signal?.addEventListener("abort", () => ac.abort(), { once: true });
    const stream = this.#client.watchFiles({ container: { ref: this.#ref() }, path }, { signal: ac.signal });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    if (first.done || first.value.event.case !== "watching") {
      ac.abort();
      throw new ChalkError(Code.Unavailable, `watch ${path}: the server did not start the watch`);
    }
    async function* events(): AsyncGenerator<FileEvent> {
      try {
        for (;;) {
          const next = await iterator.next();
          if (next.done) return;
          const e = next.value.event;
          if (e.case === "file") yield { type: EVENT_TYPES[e.value.type] ?? "modify", path: e.value.path };
        }
      } catch (err) {
        if (ac.signal.aborted && ChalkError.from(err).code === Code.Canceled) return;
        throw err;
      }
    }
    const gen = events();
    const close = async () => {
      ac.abort();
    };
    return {
      [Symbol.asyncIterator]: () => gen,
      close,
      [Symbol.asyncDispose]: close,
    };
  }
}
