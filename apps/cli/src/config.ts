/**
 * The config file of named contexts (as kubectl's): server address, token, environment and CA of
 * each, and which one is current. JSON, mode 0600 in a 0700 directory, replaced atomically.
 * Location: `CHALK_CONFIG`, else `$XDG_CONFIG_HOME/chalk/config.json`, else
 * `~/.config/chalk/config.json`.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import { z } from "zod";
import { note } from "./terminal.js";

/** One named context. */
export interface Context {
  /** `host:port` of the server. */
  server: string;
  /** Bearer token; sent only to `server`. */
  token?: string | undefined;
  /** Environment to act in. */
  environment?: string | undefined;
  /** PEM file of the CA that signs the server's TLS certificate. */
  ca?: string | undefined;
}

/** The whole file. */
export interface Config {
  currentContext?: string | undefined;
  contexts: Record<string, Context>;
}

/** Context names: what kubectl users type, without path or shell surprises. */
export const CONTEXT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

const contextSchema = z.object({
  server: z.string().min(1),
  token: z.string().optional(),
  environment: z.string().optional(),
  ca: z.string().optional(),
});
const configSchema = z.object({
  currentContext: z.string().optional(),
  contexts: z.record(z.string().regex(CONTEXT_NAME), contextSchema),
});

/** Where the config file is. */
export function configPath(): string {
  if (process.env.CHALK_CONFIG) return process.env.CHALK_CONFIG;
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(base, "chalk", "config.json");
}

/** Reads the config; an absent file is an empty config. Warns when others can read it. */
export async function readConfig(path = configPath()): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { contexts: {} };
    throw ChalkError.from(err);
  }
  const mode = (await stat(path)).mode & 0o077;
  if (mode !== 0) note(`chalk: warning: ${path} can be read by other users; run chmod 600 ${path}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ChalkError(Code.FailedPrecondition, `config ${path} is not JSON; fix or remove it`);
  }
  const parsed = configSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ChalkError(
      Code.FailedPrecondition,
      `config ${path}: ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`,
    );
  }
  return parsed.data;
}

/** Writes the config atomically with mode 0600 (its directory 0700). */
export async function writeConfig(config: Config, path = configPath()): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600, flag: "wx" });
    await chmod(tmp, 0o600);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw ChalkError.from(err);
  }
}

/** Checks a context name. */
export function checkContextName(name: string): string {
  if (!CONTEXT_NAME.test(name)) {
    throw invalidArgument(
      "context",
      `${JSON.stringify(name)} is not a context name`,
      "1-63 of A-Z a-z 0-9 . _ -",
    );
  }
  return name;
}
