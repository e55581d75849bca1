import { type SecretRef, type SecretSourceSpec, secretRefOf } from "@chalk/spec";
import type { BackendSecrets } from "../backend/compute-backend.js";

/**
 * Prepares a container's secrets before anything of it exists: the values a client captured with
 * `Secret.fromLocalEnv` are stored as temporary secrets of the container (the owner), then every
 * reference is checked, so a secret that does not resolve fails the request with not_found naming
 * it. On failure nothing stays stored. Returns the references (no values) for the record and the
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
    await secrets.check(environment, refs, owner);
    return refs;
  } catch (err) {
    await secrets.deleteOwner(environment, owner).catch(() => undefined);
    throw err;
  }
}
