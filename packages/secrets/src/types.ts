import type { SecretKind } from "./secret.js";

/** A managed secret's metadata. The value is never part of it. */
export interface SecretInfo {
  /** The secret's name, which is also the variable it is injected as. */
  name: string;
  /** When it was first set. */
  createdAt: Date;
  /** When it was last set. */
  updatedAt: Date;
}

/** An integration's metadata: its key names, never their values. */
export interface IntegrationInfo {
  /** The integration's name. */
  name: string;
  /** Its key names, sorted. */
  keys: string[];
  /** When it was first set. */
  createdAt: Date;
  /** When it was last set. */
  updatedAt: Date;
}

/** One page of a listing. */
export interface Page<T> {
  /** The entries of this page. */
  items: T[];
  /** Token for the next page; undefined on the last page. */
  nextPageToken: string | undefined;
}

/**
 * A spec the host can resolve: a {@link Secret} or a plain object of the same shape
 * (`{ kind: "secret", name: "X" }`).
 */
export interface SecretSpecLike {
  /** Where the value comes from. */
  readonly kind: SecretKind;
  /** The secret's, integration's or local variable's name. */
  readonly name: string;
  /** For an integration: only these keys. */
  readonly keys?: readonly string[] | undefined;
}
