import { inspect } from "node:util";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import { checkSecretName, checkSecretValue } from "./names.js";

/**
 * Where a {@link Secret} comes from: a managed `secret` of the environment ({@link Secret.fromEnv}),
 * an `integration` ({@link Secret.fromIntegration}) or the caller's local environment
 * ({@link Secret.fromLocalEnv}). The names are those of `chalk.secrets.v1.SecretSource`'s fields
 * (`secret`, `integration`, `local_env`), as protobuf-es spells them.
 */
export type SecretKind = "secret" | "integration" | "localEnv";

/** Options for {@link Secret.fromIntegration}. */
export interface SecretFromIntegrationOptions {
  /** Inject only these keys of the integration; each must exist. Default: every key. */
  keys?: readonly string[];
}

/** Options for {@link Secret.fromLocalEnv}. */
export interface SecretFromLocalEnvOptions {
  /** The environment to read from. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * What to inject into a sandbox's environment, and from where: an immutable spec, resolved by the
 * server when a container starts. A secret that cannot be resolved stops the container from
 * starting, with an error naming it.
 *
 * - {@link Secret.fromEnv}: the managed secret `name` of the current environment, injected as
 *   the variable `name`.
 * - {@link Secret.fromIntegration}: every key (or the chosen `keys`) of an integration, each
 *   injected under its key.
 * - {@link Secret.fromLocalEnv}: the value of `name` in this process's environment, **captured when
 *   `fromLocalEnv` is called**, stored as a temporary secret for one run and deleted at `stop()`.
 *
 * A spec never shows its value: `JSON.stringify`, `console.log` and `String()` print only the
 * kind and name.
 *
 * @example
 * ```ts
 * import { Secret } from "@chalk/secrets";
 * const secrets = [
 *   Secret.fromEnv("OPENAI_API_KEY"),
 *   Secret.fromIntegration("prod_postgres", { keys: ["PGHOST", "PGPASSWORD"] }),
 *   Secret.fromLocalEnv("HF_TOKEN"),
 * ];
 * ```
 */
export class Secret {
  /** Where the value comes from. */
  readonly kind: SecretKind;
  /** The secret's, integration's or local variable's name. */
  readonly name: string;
  /** For an integration: the keys to inject, or undefined for every key. */
  readonly keys: readonly string[] | undefined;
  readonly #value: string | undefined;

  private constructor(
    kind: SecretKind,
    name: string,
    keys: readonly string[] | undefined,
    value: string | undefined,
  ) {
    this.kind = kind;
    this.name = name;
    this.keys = keys;
    this.#value = value;
    Object.freeze(this);
  }

  /** The managed secret `name` of the current environment, injected as the variable `name`. */
  static fromEnv(name: string): Secret {
    return new Secret("secret", checkSecretName(name), undefined, undefined);
  }

  /** The keys of the integration `name` (all, or `options.keys`), each injected under its key. */
  static fromIntegration(name: string, options: SecretFromIntegrationOptions = {}): Secret {
    checkSecretName(name);
    let keys: readonly string[] | undefined;
    if (options.keys !== undefined) {
      if (!Array.isArray(options.keys) || options.keys.length === 0) {
        throw invalidArgument("keys", "must be a non-empty list of key names when given");
      }
      keys = Object.freeze([...new Set(options.keys.map((k, i) => checkSecretName(k, `keys.${i}`)))]);
    }
    return new Secret("integration", name, keys, undefined);
  }

  /**
   * The value of `name` in this process's environment, read now (not when the container starts), so
   * a missing variable fails here: failed_precondition naming it. The server stores it encrypted
   * for the run and deletes it at `stop()`.
   */
  static fromLocalEnv(name: string, options: SecretFromLocalEnvOptions = {}): Secret {
    checkSecretName(name);
    const value = (options.env ?? process.env)[name];
    if (value === undefined) {
      throw new ChalkError(
        Code.FailedPrecondition,
        `Secret.fromLocalEnv: the local environment variable ${JSON.stringify(name)} is not set`,
        { field: "name", details: { name } },
      );
    }
    return new Secret("localEnv", name, undefined, checkSecretValue(value, name));
  }

  /**
   * The value captured by {@link Secret.fromLocalEnv} (undefined for other kinds). For the code that
   * sends it to the server; never log it.
   */
  revealLocalValue(): string | undefined {
    return this.#value;
  }

  /** The spec without any value: `{ kind, name, keys? }`. */
  toJSON(): { kind: SecretKind; name: string; keys?: string[] } {
    return this.keys
      ? { kind: this.kind, name: this.name, keys: [...this.keys] }
      : { kind: this.kind, name: this.name };
  }

  /** `Secret.fromEnv("NAME")`, as code; never the value. */
  toString(): string {
    const method = { secret: "fromEnv", integration: "fromIntegration", localEnv: "fromLocalEnv" }[this.kind];
    const keys = this.keys ? `, { keys: ${JSON.stringify(this.keys)} }` : "";
    return `Secret.${method}(${JSON.stringify(this.name)}${keys})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}
