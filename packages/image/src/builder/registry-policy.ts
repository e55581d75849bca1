import { invalidArgument } from "@chalk/core";
import type { ImageSpec } from "@chalk/proto/image/v1";
import { type ImageReference, parseReference } from "../reference.js";

/**
 * Which registries a builder may contact: the configured one and those listed, each as written in
 * references (`host` or `host:port`, compared case-insensitively). Any other host named by an image
 * reference or a registry base (loopback, an IP literal, another port of an allowed host) is refused
 * with invalid_argument naming the field, before a request is sent: a server never makes requests
 * to hosts a client picks (server-side request forgery). Without a list (undefined), every host is
 * allowed: in-process users own the machine.
 */
export class RegistryPolicy {
  readonly #allowed: Set<string> | undefined;

  /** `allowed`: extra hosts; `configured`: the builder's registry address, always allowed. */
  constructor(allowed: readonly string[] | undefined, configured: string | undefined) {
    this.#allowed =
      allowed === undefined
        ? undefined
        : new Set([...allowed, ...(configured ? [configured] : [])].map((h) => h.toLowerCase()));
  }

  /** The hosts allowed, or undefined for any. */
  get allowed(): readonly string[] | undefined {
    return this.#allowed ? [...this.#allowed] : undefined;
  }

  /** Parses `reference` and refuses a registry host the policy does not allow (invalid_argument naming `field`). */
  checkReference(reference: string, field: string): ImageReference {
    const ref = parseReference(reference, field);
    this.checkHost(ref, field);
    return ref;
  }

  /** Refuses a parsed reference whose registry host the policy does not allow. */
  checkHost(ref: ImageReference, field: string): void {
    if (!this.#allowed || ref.registry === undefined) return;
    if (this.#allowed.has(ref.registry.toLowerCase())) return;
    const accepted =
      this.#allowed.size === 0
        ? "a reference without a registry host (this server has no registry configured)"
        : `a reference without a host, or one on ${[...this.#allowed].map((h) => JSON.stringify(h)).join(", ")}`;
    throw invalidArgument(
      field,
      `registry ${JSON.stringify(ref.registry)} is not one this server may contact`,
      accepted,
    );
  }

  /** Refuses a spec whose registry base names a host the policy does not allow. */
  checkSpec(spec: ImageSpec, field: string): void {
    const b = spec.base?.source;
    if (b?.case === "registry") this.checkReference(b.value.reference, `${field}.base.registry.reference`);
  }
}
