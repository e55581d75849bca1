import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { tagAlive } from "./process-dir.js";
import { removeHostTree } from "./safe-fs.js";
import { type Journal, rollForward } from "./volume-batch.js";
import { deadQuotaStaging } from "./volume-disks.js";

/**
 * Removes what dead processes left in a store's data directory (their staging directories, in
 * `tmp/` and on quota volumes' own file systems, and half-deleted volumes in `trash/`) and rolls
 * forward the batches they were committing. `dataDirOf` names a journal's volume contents, or
 * undefined when the volume is gone.
 */
export async function recoverDataDir(
  dataDir: string,
  volumeDir: (environment: string, name: string) => string,
  dataDirOf: (journal: Journal) => Promise<string | undefined>,
): Promise<void> {
  const finish = async (parent: string, tag: string) => {
    for (const entry of await readdir(join(parent, tag)).catch(() => [] as string[])) {
      if (entry.startsWith("batch-")) await rollForward(join(parent, tag, entry), dataDirOf);
    }
    await removeHostTree(parent, tag);
  };
  const tmp = join(dataDir, "tmp");
  for (const tag of await readdir(tmp)) if (!tagAlive(tag)) await finish(tmp, tag);
  const trash = join(dataDir, "trash");
  for (const entry of await readdir(trash)) await removeHostTree(trash, entry);
  for (const { staging, tag } of await deadQuotaStaging(dataDir, volumeDir)) await finish(staging, tag);
}
