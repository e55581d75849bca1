import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

/**
 * Starts a TypeScript file in a new Node process (tsx's loader imported directly, so the pid is the
 * process that runs the script), resolving workspace packages to their sources.
 */
export function spawnTs(script: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const loader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  return spawn(
    process.execPath,
    ["--import", loader, "--conditions=@chalk/source", script, ...args],
    options,
  );
}
