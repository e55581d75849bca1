import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { childEnv } from "./child-env.js";

/**
 * The gVisor version this package is built and tested against: the `gvisor.dev/gvisor` module
 * version pinned in `tooling/gvisor/go.mod`, which is also what the pinned `runsc --version`
 * prints. A unit test keeps the two equal.
 */
export const RUNSC_VERSION = "v0.0.0-20260905035102-160fafc42237";

/** The command that builds the pinned runsc (and the PTY relay) into the cache, once per version. */
export const RUNSC_SETUP_COMMAND = "bash tooling/scripts/setup.sh";

/**
 * The directory the pinned build puts its binaries in:
 * `${CHALK_CACHE:-/var/cache/chalk}/gvisor/<RUNSC_VERSION>` (`tooling/gvisor/build.sh`).
 */
export function pinnedBuildDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.CHALK_CACHE || "/var/cache/chalk", "gvisor", RUNSC_VERSION);
}

/** Where the pinned runsc is built: `<pinnedBuildDir>/runsc`. The default of `LocalRuntimeOptions.runscPath`. */
export function defaultRunscPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(pinnedBuildDir(env), "runsc");
}

/** Where the pinned PTY relay is built: `<pinnedBuildDir>/chalk-pty-relay`. */
export function defaultPtyRelayPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(pinnedBuildDir(env), "chalk-pty-relay");
}

/** Where the pinned init-log writer is built: `<pinnedBuildDir>/chalk-log-writer`. */
export function defaultLogWriterPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(pinnedBuildDir(env), "chalk-log-writer");
}

/**
 * The reaping init that sandboxes' init processes run under by default: Debian's statically linked
 * `tini` (package `tini`, installed by the setup command), bind-mounted read-only into each sandbox.
 */
export const DEFAULT_INIT_PATH = "/usr/bin/tini-static";

/** The version a `runsc --version` output names (`runsc version X`), or undefined. */
export function parseRunscVersion(output: string): string | undefined {
  return /^runsc version (\S+)/m.exec(output)?.[1];
}

/** Fails with `unavailable`, naming the setup command, when `path` is not an executable file. */
export function requireExecutable(path: string, what: string): void {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new ChalkError(
      Code.Unavailable,
      `${what} not found at ${path}; build the pinned gVisor ${RUNSC_VERSION} with \`${RUNSC_SETUP_COMMAND}\` (as root)`,
    );
  }
}

/**
 * Checks that `path` is the pinned runsc: an executable whose `runsc --version` is
 * {@link RUNSC_VERSION}. Missing: `unavailable`; another version (Debian's, say): `failed_precondition`.
 * Both name the setup command.
 */
export async function checkRunsc(path: string): Promise<void> {
  requireExecutable(path, "runsc (gVisor)");
  const output = await new Promise<string>((resolve, reject) =>
    execFile(path, ["--version"], { timeout: 30_000, env: childEnv() }, (err, stdout) =>
      err
        ? reject(new ChalkError(Code.Unavailable, `${path} --version failed: ${err.message}`, { cause: err }))
        : resolve(stdout),
    ),
  );
  const version = parseRunscVersion(output);
  if (version !== RUNSC_VERSION) {
    throw new ChalkError(
      Code.FailedPrecondition,
      `runsc at ${path} is version ${version ?? "unknown"}, but this runtime needs ${RUNSC_VERSION}; build it with \`${RUNSC_SETUP_COMMAND}\` (as root) or point runscPath (CHALK_RUNSC for the server) at that build`,
    );
  }
}
