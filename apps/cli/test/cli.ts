/**
 * Runs the built `chalk` binary as a user would: a child process with its own environment (the test
 * server's address and token, a private config file), stdin from a string or nothing, stdout and
 * stderr captured, and its exit code.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ServerProcess } from "@chalk/server/testing";
import { afterAll } from "vitest";

/** The built binary. */
export const CHALK = fileURLToPath(new URL("../dist/main.js", import.meta.url));

/** What a run of chalk gave. */
export interface ChalkResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Options for {@link chalk}. */
export interface ChalkRunOptions {
  /** Written to stdin, then EOF. Default: stdin is empty. */
  input?: string | Buffer;
  /** Environment on top of {@link cliEnv}'s. */
  env?: Record<string, string | undefined>;
  /** Working directory. */
  cwd?: string;
}

/** A private directory for the test file (config file, local files), removed after it. */
export function useTempDir(): { readonly dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "chalk-cli-test-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return { dir };
}

/** The environment of a chalk run against `server`, with its config file in `dir`. */
export function cliEnv(server: ServerProcess, dir: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("CHALK_") && k !== "NO_COLOR" && k !== "FORCE_COLOR") env[k] = v;
  }
  return { ...env, ...server.env, CHALK_CONFIG: join(dir, "config.json") };
}

/** Runs `chalk ARGS` to completion. */
export function runChalk(
  args: string[],
  env: Record<string, string | undefined>,
  options: ChalkRunOptions = {},
): Promise<ChalkResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHALK, ...args], {
      env: Object.fromEntries(
        Object.entries({ ...env, ...options.env }).filter(([, v]) => v !== undefined),
      ) as Record<string, string>,
      cwd: options.cwd,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}
