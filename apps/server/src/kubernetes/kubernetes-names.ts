import { createHash } from "node:crypto";

/** Label on everything the server makes in a cluster (the Kubernetes recommended label). */
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
/** Its value. */
export const MANAGED_BY = "chalk";
/** Label: the container id (a UUID) on a container's Pod, Secret and Service. */
export const CONTAINER_ID_LABEL = "chalk.dev/container-id";
/** Label: what a Pod is for (`container`, or `sandbox` for the sandbox service's bare Pods). */
export const ROLE_LABEL = "chalk.dev/role";
/** Annotation: the environment's own name (namespace names cannot hold every environment name). */
export const ENVIRONMENT_ANNOTATION = "chalk.dev/environment";
/** Annotation: the container's name. */
export const NAME_ANNOTATION = "chalk.dev/name";
/** The name of the one container of every Pod the server makes. */
export const MAIN_CONTAINER = "main";

/** The default namespace prefix (`--namespace-prefix`). */
export const DEFAULT_NAMESPACE_PREFIX = "chalk-";
/** Label: which server (its namespace prefix, without the final `-`) made a Pod; its informer sees only those. */
export const INSTANCE_LABEL = "chalk.dev/instance";
/** Accepted namespace prefixes: a lower-case letter, then up to 19 of a-z 0-9 -, ending in `-`. */
export const NAMESPACE_PREFIX_PATTERN = /^[a-z][a-z0-9-]{0,18}-$/;
const MAX_LABEL = 63;

/**
 * The namespace of an environment: a DNS-1123 label, collision-free. Environment names are 1-63 of
 * `a-z 0-9 . _ -`; namespace names allow only `a-z 0-9 -`. The encoding keeps letters and digits
 * and writes `-` as `-0`, `.` as `-1`, `_` as `-2` (a prefix-free code, so two environments never
 * share an encoding), after the server's prefix (`--namespace-prefix`, default `chalk-`: several
 * servers can share a cluster). A name longer than 63 characters is cut to fit and ends in `-h` and 16 hex digits of the SHA-256 of the environment's name (`-h` never occurs
 * in an uncut encoding, so cut and uncut names never meet; two cut ones would need a 64-bit hash
 * collision). The environment's own name is also kept in the namespace's annotation
 * {@link ENVIRONMENT_ANNOTATION}.
 *
 * @example
 * ```ts
 * namespaceOf("team.a_b-c"); // "chalk-team-1a-2b-0c"
 * ```
 */
export function namespaceOf(environment: string, prefix: string = DEFAULT_NAMESPACE_PREFIX): string {
  const encoded = [...environment]
    .map((ch) => (ch === "-" ? "-0" : ch === "." ? "-1" : ch === "_" ? "-2" : ch))
    .join("");
  const full = `${prefix}${encoded}`;
  if (full.length <= MAX_LABEL) return full;
  const hash = createHash("sha256").update(environment).digest("hex").slice(0, 16);
  const cut = encoded.slice(0, MAX_LABEL - prefix.length - 18);
  return `${prefix}${cut}-h${hash}`;
}

/** The Pod (and Secret, Service) name of a container id. */
export function podNameOf(id: string): string {
  return `c-${id}`;
}

/** The Kubernetes Secret that carries a container's secret env values. */
export function secretNameOf(id: string): string {
  return `c-${id}-env`;
}
