import type { MessageInitShape } from "@bufbuild/protobuf";
import type { IntegrationInfoSchema, SecretInfoSchema, SecretService } from "@chalk/proto/secrets/v1";
import type { ServiceImpl } from "@chalk/rpc";
import type { IntegrationInfo, SecretInfo } from "../types.js";
import type { SecretStore } from "./secret-store.js";

function secretInfoToProto(s: SecretInfo): MessageInitShape<typeof SecretInfoSchema> {
  return {
    name: s.name,
    createdAtMs: BigInt(s.createdAt.getTime()),
    updatedAtMs: BigInt(s.updatedAt.getTime()),
  };
}

function integrationInfoToProto(i: IntegrationInfo): MessageInitShape<typeof IntegrationInfoSchema> {
  return {
    name: i.name,
    keys: i.keys,
    createdAtMs: BigInt(i.createdAt.getTime()),
    updatedAtMs: BigInt(i.updatedAt.getTime()),
  };
}

/**
 * The `chalk.secrets.v1.SecretService` implementation over a {@link SecretStore}, for
 * `addService(server, SecretService, secretServiceImpl(store))`. Every call acts in the caller's
 * environment (`ctx.environment`). Write-only: no response carries a value.
 *
 * @example
 * ```ts
 * import { addService, listen } from "@chalk/rpc";
 * import { SecretService } from "@chalk/proto/secrets/v1";
 * import { SecretStore, secretServiceImpl } from "@chalk/secrets/host";
 * const store = await SecretStore.open({ path: "/var/lib/chalk/secrets.db" });
 * await listen({ address: "127.0.0.1:50051", register: (s) => addService(s, SecretService, secretServiceImpl(store)) });
 * ```
 */
export function secretServiceImpl(store: SecretStore): ServiceImpl<typeof SecretService> {
  return {
    async setSecret(req, ctx) {
      const { secret, created } = store.setSecret(ctx.environment, req.name, req.value);
      return { secret: secretInfoToProto(secret), created };
    },
    async listSecrets(req, ctx) {
      const page = store.listSecrets(ctx.environment, { pageSize: req.pageSize, pageToken: req.pageToken });
      return { secrets: page.items.map(secretInfoToProto), nextPageToken: page.nextPageToken ?? "" };
    },
    async deleteSecret(req, ctx) {
      store.deleteSecret(ctx.environment, req.name);
      return {};
    },
    async setIntegration(req, ctx) {
      const { integration, created } = store.setIntegration(ctx.environment, req.name, req.values);
      return { integration: integrationInfoToProto(integration), created };
    },
    async listIntegrations(req, ctx) {
      const page = store.listIntegrations(ctx.environment, {
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return {
        integrations: page.items.map(integrationInfoToProto),
        nextPageToken: page.nextPageToken ?? "",
      };
    },
    async deleteIntegration(req, ctx) {
      store.deleteIntegration(ctx.environment, req.name);
      return {};
    },
  };
}
