import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The `process` of an OCI config, as far as this runtime reads and writes it. */
export interface OciProcess {
  args: string[];
  env: string[];
  cwd: string;
  terminal: boolean;
  [key: string]: unknown;
}

/**
 * The path of runsc's state file for a sandbox (one container, its own sandbox):
 * `<root>/<id>_sandbox:<id>.state` (`runsc/container/state_file.go`, `buildPath`).
 */
export function runscStateFile(root: string, id: string): string {
  return join(root, `${id}_sandbox:${id}.state`);
}

/**
 * The init process of a running sandbox as runsc recorded it in its state file (`spec.process`:
 * the OCI config it was started from, environment included). runsc keeps this file, root-only
 * (0640 in a 0700 directory), for as long as the sandbox exists and removes it on delete; it is the
 * one copy of the sandbox's environment on disk while it runs, so execs read their defaults from
 * it instead of from a copy of their own (the bundle's `config.json` loses its environment once the
 * sandbox runs). Throws ENOENT when the sandbox has no state (stopped meanwhile).
 */
export function readRunscProcess(root: string, id: string): OciProcess {
  const state = JSON.parse(readFileSync(runscStateFile(root, id), "utf8")) as {
    spec?: { process?: OciProcess };
  };
  const process = state.spec?.process;
  if (!process || !Array.isArray(process.env)) {
    throw new Error(`runsc's state for ${id} holds no process spec`);
  }
  return process;
}
