/**
 * Bearer tokens and the environments each may act in: parsed from `--token TOKEN@ENVS`,
 * `CHALK_TOKEN` with `CHALK_TOKEN_ENVIRONMENTS`, and a tokens file. Only SHA-256 digests are kept.
 */
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { ChalkError, Code } from "@chalk/core";
import { z } from "zod";

/** One accepted token: its SHA-256 digest and the environments it may act in. */
export interface TokenGrant {
  /** SHA-256 of the token's UTF-8 bytes. The token itself is not kept. */
  readonly sha256: Buffer;
  /** The environments the token may act in, or `"*"` for every environment (an explicit choice). */
  readonly environments: "*" | readonly string[];
  /** Where the grant came from, for messages: `--token #2`, `CHALK_TOKEN`, `tokens file entry 3`. */
  readonly source: string;
}

/** The form of an environment name. */
export const ENVIRONMENT_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** The SHA-256 digest of a token. */
export function tokenDigest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

const tokenText = z
  .string()
  .min(16, "tokens must be at least 16 characters")
  .max(512, "tokens must be at most 512 characters")
  .regex(/^[\x21-\x7e]+$/, "tokens are printable ASCII without spaces");

const environmentList = z.union([
  z.literal("*"),
  z
    .array(
      z.string().regex(ENVIRONMENT_NAME_PATTERN, "environment names are 1-63 of a-z, 0-9, '.', '_', '-'"),
    )
    .min(1, 'list at least one environment, or "*" for all'),
]);

/** Thrown for a bad token configuration; the server's config turns it into a ConfigError. */
export class TokenConfigError extends ChalkError {
  constructor(message: string) {
    super(Code.InvalidArgument, message);
    this.name = "TokenConfigError";
  }
}

/** Reads `ENVS` (`*` or `env1,env2`) of a token grant. */
export function parseEnvironments(value: string, where: string): "*" | string[] {
  const list = value === "*" ? "*" : value.split(",").map((e) => e.trim());
  const parsed = environmentList.safeParse(list);
  if (!parsed.success) {
    throw new TokenConfigError(
      `${where}: ${JSON.stringify(value.slice(0, 80))} is not an environment list; accepted: "*" (every environment) or env1,env2 (${parsed.error.issues[0]?.message})`,
    );
  }
  return parsed.data === "*" ? "*" : [...parsed.data];
}

function checkToken(token: string, where: string): void {
  const parsed = tokenText.safeParse(token);
  if (!parsed.success) throw new TokenConfigError(`${where}: ${parsed.error.issues[0]?.message}`);
}

/**
 * Reads one `--token` value, `TOKEN@ENVS`: the token, then after the last `@` the environments it may
 * act in (`*` for all). A token without `@ENVS` is refused: every grant names its environments.
 */
export function parseTokenFlag(value: string, index: number): TokenGrant {
  const where = `--token #${index + 1}`;
  const at = value.lastIndexOf("@");
  if (at < 0) {
    throw new TokenConfigError(
      `${where}: say which environments the token may act in: --token TOKEN@env1,env2, or --token TOKEN@* for every environment`,
    );
  }
  const token = value.slice(0, at);
  checkToken(token, where);
  return {
    sha256: tokenDigest(token),
    environments: parseEnvironments(value.slice(at + 1), where),
    source: where,
  };
}

/** `CHALK_TOKEN` with the environments in `CHALK_TOKEN_ENVIRONMENTS` (required with it). */
export function tokenFromEnvironment(env: NodeJS.ProcessEnv): TokenGrant | undefined {
  const token = env.CHALK_TOKEN;
  if (!token) return undefined;
  checkToken(token, "CHALK_TOKEN");
  const envs = env.CHALK_TOKEN_ENVIRONMENTS;
  if (!envs) {
    throw new TokenConfigError(
      'CHALK_TOKEN: set CHALK_TOKEN_ENVIRONMENTS to the environments it may act in ("env1,env2", or "*" for every environment)',
    );
  }
  return {
    sha256: tokenDigest(token),
    environments: parseEnvironments(envs, "CHALK_TOKEN_ENVIRONMENTS"),
    source: "CHALK_TOKEN",
  };
}

const fileEntry = z
  .strictObject({
    token: tokenText.optional(),
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, "sha256 is the token's SHA-256 as 64 lower-case hex digits")
      .optional(),
    environments: environmentList,
    name: z.string().max(64).optional(),
  })
  .refine(
    (e) => (e.token === undefined) !== (e.sha256 === undefined),
    "give exactly one of token and sha256",
  );

const fileSchema = z.array(fileEntry).min(1, "list at least one token");

/**
 * Reads a tokens file: a JSON array of `{"sha256": "<hex>" | "token": "<token>", "environments":
 * ["env1"] | "*", "name"?: "ci"}`. A file that holds plaintext tokens must not be readable by group
 * or others (`chmod 600`).
 */
export function readTokensFile(path: string): TokenGrant[] {
  let text: string;
  let mode: number;
  try {
    text = readFileSync(path, "utf8");
    mode = statSync(path).mode;
  } catch (err) {
    throw new TokenConfigError(`--tokens-file: cannot read ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new TokenConfigError(`--tokens-file ${path}: not JSON`);
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    // Issues name paths and rules; zod never echoes a token's value in them.
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new TokenConfigError(`--tokens-file ${path}: ${problems.join("; ")}`);
  }
  if (parsed.data.some((e) => e.token !== undefined) && (mode & 0o077) !== 0) {
    throw new TokenConfigError(
      `--tokens-file ${path}: holds plaintext tokens but is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it, or list sha256 digests instead`,
    );
  }
  return parsed.data.map((e, i) => ({
    sha256: e.token !== undefined ? tokenDigest(e.token) : Buffer.from(e.sha256 ?? "", "hex"),
    environments: e.environments === "*" ? "*" : [...e.environments],
    source: `tokens file entry ${i + 1}${e.name ? ` (${e.name})` : ""}`,
  }));
}

/** Refuses the same token configured twice: its grants would be ambiguous. */
export function checkDistinct(grants: readonly TokenGrant[]): void {
  const seen = new Map<string, string>();
  for (const g of grants) {
    const key = g.sha256.toString("hex");
    const first = seen.get(key);
    if (first) {
      throw new TokenConfigError(
        `${g.source}: the same token as ${first}; give each token once, with all its environments`,
      );
    }
    seen.set(key, g.source);
  }
}
