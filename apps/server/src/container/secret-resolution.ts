import { ChalkError, Code } from "@chalk/core";
import { type SecretRef, type SecretSourceSpec, secretRefOf } from "@chalk/spec";
import type { BackendSecrets } from "../backend/compute-backend.js";

/**
 * Prepares a container's secrets before anything of it exists: the values a client captured with
 * `Secret.fromLocalEnv` are stored as temporary secrets of the container (the owner), then every
 * reference is checked, so a secret that does not resolve fails the request with not_found naming
 * it and its place in the request (field `secrets[i]`). On failure nothing stays stored. Returns the references (no values) for the record and the
 * backend, which materialises them when it creates the container.
 */
export async function prepareSecrets(
  secrets: BackendSecrets,
  environment: string,
  owner: string,
  sources: readonly SecretSourceSpec[],
): Promise<SecretRef[]> {
  try {
    for (const s of sources) {
      if (s.kind === "localEnv") await secrets.setTemporary(environment, owner, s.name, s.value);
    }
    const refs = sources.map(secretRefOf);
    // One reference at a time, so that a secret that does not resolve is named by its place in
    // the request (`secrets[2]`) as well as by its name.
    for (const [i, ref] of refs.entries()) {
      try {
        await secrets.check(environment, [ref], owner);
      } catch (err) {
        const e = ChalkError.from(err);
        if (e.code !== Code.NotFound || e.field !== undefined) throw err;
        throw new ChalkError(Code.NotFound, `secrets[${i}]: ${e.rawMessage}`, { field: `secrets[${i}]` });
      }
    }
    return refs;
  } catch (err) {
    await secrets.deleteOwner(environment, owner).catch(() => undefined);
    throw err;
  }
}
