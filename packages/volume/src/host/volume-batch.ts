import { lstat, mkdir, open, readFile, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import type { VolumeFileInfo } from "../types.js";
import { parseVolumePath } from "../volume-path.js";
import { checkMode, checkSize, placeStaged, precheckTarget, stageFile, syncDir } from "./file-staging.js";
import { at, DIR_FLAGS, errno, hostError, removeHostTree, VolumeTree } from "./safe-fs.js";
import { quotaError } from "./volume-disks.js";
import type { VolumeStore } from "./volume-store.js";
import type { VolumeFileSource, VolumeStorePutOptions } from "./volume-store-options.js";

/**
 * An entry of a batch: a staged file (its name in the batch's staging directory) or, with
 * `directoryMode`, a directory to create or re-mode; and its path in the volume.
 */
export interface JournalFile {
  staged: string;
  components: string[];
  /** Permission bits of a directory entry; absent for a file. */
  directoryMode?: number;
}

/** What a committing batch writes before its renames, so a crash can be rolled forward. */
export interface Journal {
  environment: string;
  volume: string;
  files: JournalFile[];
}

/**
 * Refuses a batch that writes a file at a path and anything below it (which needs it to be a
 * directory). Directory entries may have entries below them.
 */
export function checkBatchPaths(entries: ReadonlyMap<string, JournalFile>): void {
  for (const p of entries.keys()) {
    const parts = p.split("/");
    for (let i = 1; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join("/");
      const a = entries.get(ancestor);
      if (a && a.directoryMode === undefined) {
        throw invalidArgument(
          "path",
          `the batch writes both ${JSON.stringify(ancestor)} and ${JSON.stringify(p)}, which needs it to be a directory`,
        );
      }
    }
  }
}

/** Writes a batch's journal (fsynced, with its directory): from here on the batch happens. */
export async function writeJournal(batchDir: string, journal: Journal): Promise<void> {
  const jf = await open(join(batchDir, "journal.json"), "wx", 0o600);
  try {
    await jf.writeFile(JSON.stringify(journal));
    await jf.sync();
  } finally {
    await jf.close();
  }
  await syncDir(batchDir);
}

/** Renames a journaled batch's staged files into place; the files placed and the failures. */
export async function placeJournaled(
  dataDir: string,
  batchDir: string,
  files: readonly JournalFile[],
): Promise<{ infos: VolumeFileInfo[]; failures: string[] }> {
  const infos: VolumeFileInfo[] = [];
  const failures: string[] = [];
  await using tree = await VolumeTree.open(dataDir);
  for (const f of files) {
    if (f.directoryMode !== undefined) {
      await placeDirectory(tree, f.components, f.directoryMode).catch((err: unknown) => {
        failures.push(`${f.components.join("/")}: ${ChalkError.from(err).rawMessage}`);
      });
      continue;
    }
    const staged = join(batchDir, f.staged);
    const present = await lstat(staged).then(
      () => true,
      () => false,
    );
    if (!present) continue;
    try {
      infos.push(await placeStaged(tree, staged, f.components));
    } catch (err) {
      failures.push(`${f.components.join("/")}: ${ChalkError.from(err).rawMessage}`);
    }
  }
  return { infos, failures };
}

/** Checks, under the volume's write lock before the journal, that every entry of a batch can be placed. */
export async function precheckBatch(
  dataDir: string,
  entries: ReadonlyMap<string, JournalFile>,
): Promise<void> {
  checkBatchPaths(entries);
  for (const entry of entries.values()) await precheckEntry(dataDir, entry);
}

/**
 * Checks, before a batch commits, that an entry can be placed: a file's target is not a directory,
 * a directory's target is absent or a directory (parents resolved in the volume, no-follow).
 */
export async function precheckEntry(dataDir: string, entry: JournalFile): Promise<void> {
  if (entry.directoryMode === undefined) return precheckTarget(dataDir, entry.components);
  await using tree = await VolumeTree.open(dataDir);
  let ref: Awaited<ReturnType<VolumeTree["parent"]>>;
  try {
    ref = await tree.parent(entry.components, "fail");
  } catch (err) {
    if (err instanceof ChalkError && err.code === Code.NotFound) return; // parents get created
    throw err;
  }
  try {
    const st = await lstat(at(ref.dir, ref.name)).catch(() => undefined);
    if (st && !st.isDirectory()) throw notADirectory(entry.components);
  } finally {
    await ref.dir.close();
  }
}

function notADirectory(components: readonly string[]): ChalkError {
  return new ChalkError(
    Code.FailedPrecondition,
    `cannot make directory ${JSON.stringify(components.join("/"))}: it exists and is not a directory`,
  );
}

/**
 * Creates a directory (and missing parents, 0755) inside the volume without following symlinks,
 * or sets the mode of the directory already there; fsyncs its parent.
 */
async function placeDirectory(tree: VolumeTree, components: string[], mode: number): Promise<void> {
  const ref = await tree.parent(components, "create");
  try {
    const target = at(ref.dir, ref.name);
    await mkdir(target, mode).catch((err: unknown) => {
      if (errno(err) !== "EEXIST") throw hostError(err, "create directory", components.join("/"));
    });
    // O_NOFOLLOW | O_DIRECTORY: a symlink or file planted at the name is refused, never followed.
    const dir = await open(target, DIR_FLAGS).catch((err: unknown) => {
      throw errno(err) === "ELOOP" || errno(err) === "ENOTDIR"
        ? notADirectory(components)
        : hostError(err, "open directory", components.join("/"));
    });
    try {
      await dir.chmod(mode); // mkdir's mode is masked by the umask, and an existing one is re-moded
    } finally {
      await dir.close();
    }
    await ref.dir.sync();
  } finally {
    await ref.dir.close();
  }
}

/**
 * Finishes a batch whose journal was written before its process died (its staged files are moved
 * into place); a batch without a journal never committed and is discarded with its directory.
 */
export async function rollForward(
  batchDir: string,
  dataDirOf: (journal: Journal) => Promise<string | undefined>,
): Promise<void> {
  let journal: Journal;
  try {
    journal = JSON.parse(await readFile(join(batchDir, "journal.json"), "utf8")) as Journal;
  } catch {
    return;
  }
  const dataDir = await dataDirOf(journal);
  if (dataDir) await placeJournaled(dataDir, batchDir, journal.files);
}

/**
 * Files staged for one volume that appear together on {@link VolumeStoreBatch.commit}. Disposing
 * an uncommitted batch discards it.
 */
export class VolumeStoreBatch implements AsyncDisposable {
  private readonly files = new Map<string, JournalFile>();
  private state: "open" | "committing" | "done" = "open";
  private counter = 0;

  /** @internal */
  constructor(
    private readonly store: VolumeStore,
    /** The environment of the volume. */
    readonly environment: string,
    /** The volume name. */
    readonly volume: string,
    /** @internal Host directory of the volume's contents. */
    readonly dataDir: string,
    /** @internal Staging directory of this batch. */
    readonly dir: string,
    /** @internal The volume's quota, when it has one. */
    private readonly quotaBytes?: number,
  ) {}

  /** Number of distinct paths staged so far. */
  get size(): number {
    return this.files.size;
  }

  /**
   * Stages one file (bytes or a stream of chunks). A later file with the same path replaces an
   * earlier one. Path problems are reported before any data is read.
   */
  async putFile(path: string, data: VolumeFileSource, options: VolumeStorePutOptions = {}): Promise<void> {
    if (this.state !== "open")
      throw new ChalkError(Code.FailedPrecondition, "the batch is already committed or discarded");
    const components = parseVolumePath(path);
    const mode = checkMode(options.mode);
    const size = checkSize(options.size);
    await precheckTarget(this.dataDir, components);
    const staged = `${this.counter++}`;
    await stageFile(join(this.dir, staged), data, mode, size, options.signal).catch((err: unknown) => {
      throw quotaError(err, this.volume, this.quotaBytes);
    });
    await this.set(components, { staged, components });
  }

  /**
   * Adds a directory (empty or not) to the batch: on commit it is created with missing parents, or
   * its mode is set when it exists. `mode` 0 or absent means 0755. A later entry with the same path
   * replaces an earlier one.
   */
  async putDirectory(path: string, options: { mode?: number } = {}): Promise<void> {
    if (this.state !== "open")
      throw new ChalkError(Code.FailedPrecondition, "the batch is already committed or discarded");
    const components = parseVolumePath(path);
    const directoryMode = options.mode === undefined || options.mode === 0 ? 0o755 : checkMode(options.mode);
    await this.set(components, { staged: "", components, directoryMode });
  }

  private async set(components: string[], entry: JournalFile): Promise<void> {
    const key = components.join("/");
    const previous = this.files.get(key);
    if (previous && previous.directoryMode === undefined) {
      await unlink(join(this.dir, previous.staged)).catch(() => undefined);
    }
    this.files.set(key, entry);
  }

  /** Moves every staged file into place; API readers see all of them or none. */
  async commit(): Promise<VolumeFileInfo[]> {
    if (this.state !== "open")
      throw new ChalkError(Code.FailedPrecondition, "the batch is already committed or discarded");
    this.state = "committing";
    try {
      return await this.store.commitBatch(this, this.files);
    } catch (err) {
      await this.store.discardBatch(this);
      throw err;
    } finally {
      this.state = "done";
    }
  }

  /** Discards every staged file. */
  async abort(): Promise<void> {
    if (this.state !== "open") return;
    this.state = "done";
    await this.store.discardBatch(this);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.abort();
  }
}

/** Removes a batch's staging directory (in the store's staging area or a quota volume's). */
export function removeBatchDir(dir: string): Promise<void> {
  return removeHostTree(dirname(dir), basename(dir));
}
