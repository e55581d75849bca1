import type { MessageInitShape } from "@bufbuild/protobuf";
import { invalidArgument } from "@chalk/core";
import type { SecretSource, SecretSourceSchema } from "@chalk/proto/secrets/v1";
import { Secret } from "./secret.js";

/**
 * A {@link Secret} as the `chalk.secrets.v1.SecretSource` message that other services (containers)
 * carry. A `fromLocalEnv` secret carries its captured value: send it only to the server.
 */
export function secretToProto(secret: Secret): MessageInitShape<typeof SecretSourceSchema> {
  switch (secret.kind) {
    case "secret":
      return { source: { case: "secret", value: { name: secret.name } } };
    case "integration":
      return {
        source: { case: "integration", value: { name: secret.name, keys: [...(secret.keys ?? [])] } },
      };
    case "localEnv":
      return {
        source: { case: "localEnv", value: { name: secret.name, value: secret.revealLocalValue() ?? "" } },
      };
  }
}

/**
 * The {@link Secret} a `SecretSource` message describes, validated (invalid_argument naming
 * `field`). A `local_env` source becomes a `fromLocalEnv` secret holding the sent value.
 */
export function secretFromProto(message: SecretSource, field = "secrets"): Secret {
  const s = message.source;
  switch (s.case) {
    case "secret":
      return Secret.fromEnv(s.value.name);
    case "integration":
      return Secret.fromIntegration(s.value.name, s.value.keys.length > 0 ? { keys: s.value.keys } : {});
    case "localEnv":
      return Secret.fromLocalEnv(s.value.name, { env: { [s.value.name]: s.value.value } });
    default:
      throw invalidArgument(field, "names no source", "secret, integration or local_env");
  }
}
