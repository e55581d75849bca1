/**
 * `@chalk/secrets/host`: the server side of secrets — the encrypted {@link SecretStore} (SQLite,
 * AES-256-GCM), host-internal resolution of secret specs into environment variables, temporary
 * secrets per owner, and the write-only gRPC service a server mounts with `addService`.
 *
 * @example
 * ```ts
 * import { addService, listen } from "@chalk/rpc";
 * import { SecretService } from "@chalk/proto/secrets/v1";
 * import { SecretStore, secretServiceImpl } from "@chalk/secrets/host";
 *
 * const store = await SecretStore.open({ path: "/var/lib/chalk/secrets.db" });
 * await listen({ address: "127.0.0.1:50051", register: (s) => addService(s, SecretService, secretServiceImpl(store)) });
 * // When a container starts:
 * store.setTemporaryFrom(env, containerId, secrets);
 * const vars = store.resolve(env, secrets, { owner: containerId });
 * // When it stops:
 * store.deleteOwner(env, containerId);
 * ```
 *
 * @packageDocumentation
 */

export type { IntegrationInfo, Page, SecretInfo, SecretSpecLike } from "../types.js";
export { KEY_BYTES, keyId } from "./key.js";
export { secretServiceImpl } from "./secret-service.js";
export {
  SecretStore,
  type SecretStoreListOptions,
  type SecretStoreOpenOptions,
  type SecretStoreResolveOptions,
} from "./secret-store.js";
