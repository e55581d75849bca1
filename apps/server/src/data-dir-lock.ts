/**
 * One server per data dir: an exclusive `flock(2)` on the data dir itself, held for the server's
 * life. Two servers on one data dir would each adopt, stop and clean the other's containers.
 *
 * The lock is the kernel's, on an open file description of the directory that only this process
 * holds (Node opens files close-on-exec, so no sandbox or helper it starts inherits it): it ends
 * with the process however that ends, `kill -9` included, so a crashed server leaves nothing stale
 * to clean. Node has no `flock` of its own, so util-linux's `flock` takes it on a descriptor this
 * process passes down (`flock --exclusive --nonblock 3`): the child and this process share the
 * open file description, and the lock stays after the child exits, as long as this process keeps
 * its descriptor. No native module, no lock file that a crash could leave behind.
 *
 * `server.pid` in the data dir names the holder, only for the message a second server prints; it is
 * read only while the lock is held by someone, so a stale one never decides anything.
 */
import { spawnSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The file in the data dir that names the pid of the server holding it. */
export const PID_FILE = "server.pid";

/** The status `flock` exits with when another process holds the lock (distinct from its own errors). */
const CONFLICT_STATUS = 9;

/** Thrown by {@link lockDataDir} when another live process holds the data dir. */
export class DataDirInUseError extends Error {
  /**
   * @param dataDir - The data dir.
   * @param pid - The pid of the server holding it, when it has written it (it does once started).
   */
  constructor(
    readonly dataDir: string,
    readonly pid: number | undefined,
  ) {
    super(
      `data dir ${dataDir} is in use by another chalk-server (${pid === undefined ? "pid not yet known: it is starting" : `pid ${pid}`}); ` +
        "stop that server, or give this one another --data-dir",
    );
    this.name = "DataDirInUseError";
  }
}

/** A held data dir lock. */
export interface DataDirLock {
  /** The data dir. */
  readonly dataDir: string;
  /** Writes this process's pid to `server.pid`, for the message another server prints. */
  recordPid(): void;
  /** Releases the lock and removes `server.pid`. Idempotent. */
  release(): void;
}

/**
 * Takes the data dir's lock without waiting, creating the directory (mode 0700) if it is missing;
 * nothing else in it is created or changed unless the lock is taken.
 *
 * @throws {@link DataDirInUseError} when another process holds it; an `Error` naming `flock` when
 *   util-linux's `flock` cannot run.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const fd = openSync(dataDir, "r");
  const taken = spawnSync(
    "flock",
    ["--exclusive", "--nonblock", "--conflict-exit-code", String(CONFLICT_STATUS), "3"],
    {
      stdio: ["ignore", "ignore", "pipe", fd],
      encoding: "utf8",
    },
  );
  if (taken.status !== 0) {
    closeSync(fd);
    if (taken.status === CONFLICT_STATUS) throw new DataDirInUseError(dataDir, holderPid(dataDir));
    const why = taken.error?.message ?? (taken.stderr.trim() || `status ${taken.status ?? taken.signal}`);
    throw new Error(`cannot lock data dir ${dataDir} with util-linux flock: ${why}`);
  }
  const pidFile = join(dataDir, PID_FILE);
  // A previous holder's (a crashed server's) pid names no one now.
  rmSync(pidFile, { force: true });
  let held = true;
  return {
    dataDir,
    recordPid() {
      if (held) writeFileSync(pidFile, `${process.pid}\n`, { mode: 0o600 });
    },
    release() {
      if (!held) return;
      held = false;
      rmSync(pidFile, { force: true });
      closeSync(fd);
    },
  };
}

function holderPid(dataDir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(join(dataDir, PID_FILE), "utf8"), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
