/**
 * `@chalk/secrets`: secrets for sandboxes and containers. {@link Secret} specs say what to inject;
 * {@link Secrets} and {@link Integrations} manage the encrypted, write-only store on the server.
 * The server side lives in `@chalk/secrets/host`.
 *
 * @example
 * ```ts
 * import { Integrations, Secret, Secrets } from "@chalk/secrets";
 *
 * await Secrets.set("OPENAI_API_KEY", "sk-…");
 * await Integrations.set("prod_postgres", { PGHOST: "db", PGPASSWORD: "…" });
 * const secrets = [Secret.fromEnv("OPENAI_API_KEY"), Secret.fromIntegration("prod_postgres")];
 * ```
 *
 * @packageDocumentation
 */

export { Integrations, Secrets, type SecretsCallOptions } from "./manage.js";
// For other libraries (the container layer, the server).
export {
  checkEnvironmentName,
  checkOwner,
  checkSecretName,
  checkSecretValue,
  MAX_INTEGRATION_KEYS,
  MAX_SECRET_NAME_LENGTH,
  MAX_SECRET_VALUE_BYTES,
  SECRET_NAME_PATTERN,
} from "./names.js";
export {
  Secret,
  type SecretFromIntegrationOptions,
  type SecretFromLocalEnvOptions,
  type SecretKind,
} from "./secret.js";
export { secretFromProto, secretToProto } from "./secret-proto.js";
export type { IntegrationInfo, Page, SecretInfo, SecretSpecLike } from "./types.js";
