import { chmod, copyFile, mkdir, rename, stat } from "node:fs/promises";
import { dirname, join } from "node:path";

/** Where the files agent's directory is mounted (read-only) in every container of the local backend. */
export const FILES_AGENT_MOUNT = "/.chalk";
/** The files agent's path inside a container of the local backend. */
export const FILES_AGENT_PATH = `${FILES_AGENT_MOUNT}/chalk-fs-agent`;

/**
 * Stages the files agent (`chalk-fs-agent`, built beside the pinned runsc by
 * `bash tooling/gvisor/build.sh fs-agent`) in `<dataDir>/fs-agent/`, a directory that holds only
 * it, for mounting read-only into each container (never runsc's own directory). Returns that
 * directory, or undefined when the agent is not built (containers then have no files API).
 */
export async function stageFilesAgent(runscPath: string, dataDir: string): Promise<string | undefined> {
  const built = join(dirname(runscPath), "chalk-fs-agent");
  const ok = await stat(built).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!ok) return undefined;
  const dir = join(dataDir, "fs-agent");
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const tmp = join(dir, `.chalk-fs-agent.${process.pid}`);
  await copyFile(built, tmp);
  await chmod(tmp, 0o555);
  await rename(tmp, join(dir, "chalk-fs-agent"));
  return dir;
}
