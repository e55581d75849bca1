import { lstat, open, readFile, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import type { VolumeFileInfo } from "../types.js";
import { parseVolumePath } from "../volume-path.js";
import { checkMode, checkSize, placeStaged, precheckTarget, stageFile, syncDir } from "./file-staging.js";
import { removeHostTree, VolumeTree } from "./safe-fs.js";
import { quotaError } from "./volume-disks.js";
import type { VolumeStore } from "./volume-store.js";
import type { VolumeFileSource, VolumeStorePutOptions } from "./volume-store-options.js";

/** A staged file of a batch: its name in the batch's staging directory, and its path in the volume. */
export interface JournalFile {
  staged: string;
  components: string[];
}

/** What a committing batch writes before its renames, so a crash can be rolled forward. */
export interface Journal {
  environment: string;
  volume: string;
  files: JournalFile[];
}

/** Refuses a batch that writes both a path and a path below it (which needs it to be a directory). */
export function checkBatchPaths(paths: readonly string[]): void {
  const set = new Set(paths);
  for (const p of paths) {
    const parts = p.split("/");
    for (let i = 1; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join("/");
      if (set.has(ancestor)) {
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
    const key = components.join("/");
    const previous = this.files.get(key);
    if (previous) await unlink(join(this.dir, previous.staged)).catch(() => undefined);
    this.files.set(key, { staged, components });
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
