import { invalidArgument } from "@chalk/core";

/** An image reference, split into its parts. */
export interface ImageReference {
  /** `host[:port]` when the reference names one (`localhost`, or a first part with `.` or `:`). */
  registry: string | undefined;
  /** Repository path: `python`, `team/app`. */
  repository: string;
  /** Tag, when given without a digest or beside one. */
  tag: string | undefined;
  /** `sha256:<hex>`, when given. */
  digest: string | undefined;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN =
  /^(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** The accepted forms, for error messages. */
export const REFERENCE_FORMS =
  '"name[:tag]", "host[:port]/path/name[:tag]" or "…@sha256:<64 hex>" (lower-case repository paths)';

/**
 * Parses an OCI image reference (`python:3.12-slim`, `127.0.0.1:5000/team/app@sha256:…`) or throws
 * invalid_argument naming `field`. A reference without a tag or digest means the tag `latest`.
 */
export function parseReference(value: unknown, field = "reference"): ImageReference {
  if (typeof value !== "string" || value === "")
    throw invalidArgument(field, "expected an image reference", REFERENCE_FORMS);
  if (value.length > 1024 || /[\s\0]/.test(value)) {
    throw invalidArgument(
      field,
      `${JSON.stringify(value.slice(0, 80))} is not an image reference`,
      REFERENCE_FORMS,
    );
  }
  let rest = value;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest))
      throw invalidArgument(field, `${JSON.stringify(digest)} is not a sha256 digest`, REFERENCE_FORMS);
  }
  const parts = rest.split("/");
  let registry: string | undefined;
  const first = parts[0] ?? "";
  if (parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost")) {
    registry = first;
    parts.shift();
    if (!DOMAIN.test(registry))
      throw invalidArgument(field, `${JSON.stringify(registry)} is not a registry host`, REFERENCE_FORMS);
  }
  let tag: string | undefined;
  const last = parts.at(-1) ?? "";
  const colon = last.indexOf(":");
  if (colon >= 0) {
    tag = last.slice(colon + 1);
    parts[parts.length - 1] = last.slice(0, colon);
    if (!TAG.test(tag))
      throw invalidArgument(field, `${JSON.stringify(tag)} is not a valid tag`, REFERENCE_FORMS);
  }
  for (const p of parts) {
    if (!COMPONENT.test(p)) {
      throw invalidArgument(
        field,
        `${JSON.stringify(value)}: ${JSON.stringify(p)} is not a valid repository path component`,
        REFERENCE_FORMS,
      );
    }
  }
  const repository = parts.join("/");
  if (repository.length > 255)
    throw invalidArgument(field, "the repository path is longer than 255 characters");
  return { registry, repository, tag: tag ?? (digest ? undefined : "latest"), digest };
}

/** Formats a reference back: `host/repo:tag@sha256:…`. */
export function formatReference(ref: ImageReference): string {
  const host = ref.registry ? `${ref.registry}/` : "";
  return `${host}${ref.repository}${ref.tag ? `:${ref.tag}` : ""}${ref.digest ? `@${ref.digest}` : ""}`;
}
