import { ChalkError, Code, invalidArgument } from "@chalk/core";
import {
  type IntegrationInfo as IntegrationInfoMessage,
  type SecretInfo as SecretInfoMessage,
  SecretService,
} from "@chalk/proto/secrets/v1";
import {
  type Client,
  createClient,
  defaultTransport,
  type Transport,
  type TransportCreateOptions,
} from "@chalk/rpc";
import { checkSecretName, checkSecretValue, MAX_INTEGRATION_KEYS } from "./names.js";
import type { IntegrationInfo, SecretInfo } from "./types.js";

/** Where the management calls go: a transport, or the options to make (and share) one. */
export interface SecretsCallOptions extends TransportCreateOptions {
  /**
   * The connection to use. Default: a transport shared by every SDK object with the same address,
   * token and environment, from these options or `CHALK_API_SERVER`, `CHALK_TOKEN`,
   * `CHALK_ENVIRONMENT`.
   */
  transport?: Transport;
}

function clientOf(options: SecretsCallOptions): Client<typeof SecretService> {
  return createClient(SecretService, options.transport ?? defaultTransport(options));
}

function secretFromProto(s: SecretInfoMessage | undefined): SecretInfo {
  if (!s) throw new ChalkError(Code.Internal, "the server sent no secret");
  return {
    name: s.name,
    createdAt: new Date(Number(s.createdAtMs)),
    updatedAt: new Date(Number(s.updatedAtMs)),
  };
}

function integrationFromProto(i: IntegrationInfoMessage | undefined): IntegrationInfo {
  if (!i) throw new ChalkError(Code.Internal, "the server sent no integration");
  return {
    name: i.name,
    keys: [...i.keys],
    createdAt: new Date(Number(i.createdAtMs)),
    updatedAt: new Date(Number(i.updatedAtMs)),
  };
}

/** Fetches every page of a listing. */
async function allPages<R extends { nextPageToken: string }, T>(
  fetch: (pageToken: string) => Promise<R>,
  items: (res: R) => T[],
): Promise<T[]> {
  const out: T[] = [];
  let pageToken = "";
  do {
    const res = await fetch(pageToken);
    out.push(...items(res));
    pageToken = res.nextPageToken;
  } while (pageToken !== "");
  return out;
}

/**
 * Manages the environment's secrets. Values are write-only: nothing returns one; a container gets
 * them through `Secret.fromEnv(name)`.
 *
 * @example
 * ```ts
 * import { Secrets } from "@chalk/secrets";
 * await Secrets.set("OPENAI_API_KEY", process.env.OPENAI_API_KEY!);
 * for (const s of await Secrets.list()) console.log(s.name, s.updatedAt);
 * await Secrets.delete("OPENAI_API_KEY");
 * ```
 */
export const Secrets = Object.freeze({
  /** Creates or replaces a secret (name: an environment variable name; value: at most 64 KiB). */
  async set(name: string, value: string, options: SecretsCallOptions = {}): Promise<SecretInfo> {
    checkSecretName(name);
    checkSecretValue(value);
    return secretFromProto((await clientOf(options).setSecret({ name, value })).secret);
  },

  /** Lists every secret of the environment by name: metadata only, never values. */
  async list(options: SecretsCallOptions = {}): Promise<SecretInfo[]> {
    const client = clientOf(options);
    return allPages(
      (pageToken) => client.listSecrets({ pageSize: 1000, pageToken }),
      (res) => res.secrets.map(secretFromProto),
    );
  },

  /** Deletes a secret; not_found when absent. */
  async delete(name: string, options: SecretsCallOptions = {}): Promise<void> {
    checkSecretName(name);
    await clientOf(options).deleteSecret({ name });
  },
});

/**
 * Manages the environment's integrations: named bundles of keys (a Postgres integration's
 * `PGHOST`, `PGUSER`, `PGPASSWORD`). Values are write-only; a container gets them through
 * `Secret.fromIntegration(name)`, each under its key.
 *
 * @example
 * ```ts
 * import { Integrations } from "@chalk/secrets";
 * await Integrations.set("prod_postgres", { PGHOST: "db.internal", PGUSER: "app", PGPASSWORD: pw });
 * console.log(await Integrations.list()); // [{ name: "prod_postgres", keys: ["PGHOST", …], … }]
 * ```
 */
export const Integrations = Object.freeze({
  /** Creates or replaces an integration with these keys (at most 100, values at most 64 KiB each). */
  async set(
    name: string,
    values: Readonly<Record<string, string>>,
    options: SecretsCallOptions = {},
  ): Promise<IntegrationInfo> {
    checkSecretName(name);
    const keys = Object.keys(values ?? {});
    if (keys.length === 0) throw invalidArgument("values", "must hold at least one key");
    if (keys.length > MAX_INTEGRATION_KEYS) {
      throw invalidArgument("values", `holds ${keys.length} keys`, `at most ${MAX_INTEGRATION_KEYS}`);
    }
    for (const k of keys) {
      checkSecretName(k, `values.${k.slice(0, 64)}`);
      checkSecretValue(values[k], `values.${k}`);
    }
    return integrationFromProto(
      (await clientOf(options).setIntegration({ name, values: { ...values } })).integration,
    );
  },

  /** Lists every integration of the environment: names and key names, never values. */
  async list(options: SecretsCallOptions = {}): Promise<IntegrationInfo[]> {
    const client = clientOf(options);
    return allPages(
      (pageToken) => client.listIntegrations({ pageSize: 1000, pageToken }),
      (res) => res.integrations.map(integrationFromProto),
    );
  },

  /** Deletes an integration; not_found when absent. */
  async delete(name: string, options: SecretsCallOptions = {}): Promise<void> {
    checkSecretName(name);
    await clientOf(options).deleteIntegration({ name });
  },
});
