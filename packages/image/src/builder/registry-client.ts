import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { open, rm } from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ChalkError, Code } from "@chalk/core";
import { MEDIA_TYPE } from "./oci-store.js";

/** Where an OCI distribution registry is and how to reach it. */
export interface RegistryOptions {
  /** `host:port` of the registry (`127.0.0.1:5000`). */
  address: string;
  /** Plain HTTP. Default: true for loopback hosts (`127.*`, `localhost`, `[::1]`), else false (HTTPS). */
  insecure?: boolean;
  /** Basic credentials, also used to get bearer tokens. */
  username?: string;
  password?: string;
}

/** A manifest as fetched: raw bytes (their digest is the manifest's identity) and media type. */
export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

type RequestBody = NonNullable<RequestInit["body"]>;

const MANIFEST_ACCEPT = [
  MEDIA_TYPE.manifest,
  MEDIA_TYPE.index,
  MEDIA_TYPE.dockerManifest,
  MEDIA_TYPE.dockerManifestList,
].join(", ");

function isLoopback(address: string): boolean {
  const host = address.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

function httpError(what: string, status: number, body: string): ChalkError {
  const detail = body.slice(0, 300).replace(/\s+/g, " ").trim();
  const code =
    status === 404
      ? Code.NotFound
      : status === 401
        ? Code.Unauthenticated
        : status === 403
          ? Code.PermissionDenied
          : status === 429
            ? Code.ResourceExhausted
            : status >= 500
              ? Code.Unavailable
              : Code.Internal;
  return new ChalkError(code, `${what}: registry answered ${status}${detail ? ` (${detail})` : ""}`);
}

/**
 * A small client of the OCI distribution API (what `docker-registry` and every container registry
 * serve): manifests and blobs, up and down, with anonymous, basic or bearer-token auth. Blobs are
 * streamed to and from files and verified against their digests.
 */
export class RegistryClient {
  /** `host:port`. */
  readonly address: string;
  readonly #base: string;
  readonly #basic: string | undefined;
  readonly #tokens = new Map<string, string>();

  constructor(options: RegistryOptions) {
    this.address = options.address;
    const scheme = (options.insecure ?? isLoopback(options.address)) ? "http" : "https";
    this.#base = `${scheme}://${options.address}`;
    this.#basic =
      options.username !== undefined
        ? `Basic ${Buffer.from(`${options.username}:${options.password ?? ""}`).toString("base64")}`
        : undefined;
  }

  async #token(challenge: string, what: string): Promise<string | undefined> {
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (!/^Bearer /i.test(challenge) || !params.realm) return this.#basic;
    const key = `${params.service ?? ""} ${params.scope ?? ""}`;
    const cached = this.#tokens.get(key);
    if (cached) return cached;
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set("service", params.service);
    if (params.scope) url.searchParams.set("scope", params.scope);
    const res = await fetch(url, { headers: this.#basic ? { authorization: this.#basic } : {} });
    if (!res.ok) throw httpError(`${what}: token`, res.status, await res.text());
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new ChalkError(Code.Unauthenticated, `${what}: the token endpoint returned no token`);
    this.#tokens.set(key, `Bearer ${token}`);
    return `Bearer ${token}`;
  }

  /** One request, retried once with credentials when the registry challenges it. */
  async #request(
    what: string,
    path: string,
    init: { method?: string; headers?: Record<string, string>; body?: () => RequestBody | undefined } = {},
  ): Promise<Response> {
    const url = path.startsWith("http") ? path : `${this.#base}${path}`;
    const send = async (auth: string | undefined) => {
      const headers = { ...(init.headers ?? {}), ...(auth ? { authorization: auth } : {}) };
      const body = init.body?.();
      try {
        return await fetch(url, {
          method: init.method ?? "GET",
          headers,
          ...(body === undefined ? {} : { body, duplex: "half" }),
        } as RequestInit);
      } catch (err) {
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        throw new ChalkError(
          Code.Unavailable,
          `${what}: cannot reach the registry at ${this.address} (${cause?.code ?? cause?.message ?? (err as Error).message})`,
          { cause: err },
        );
      }
    };
    let res = await send(this.#tokens.values().next().value ?? this.#basic);
    if (res.status === 401) {
      await res.body?.cancel();
      const challenge = res.headers.get("www-authenticate") ?? "";
      res = await send(await this.#token(challenge, what));
    }
    return res;
  }

  /** Fetches a manifest or index by tag or digest (not_found when absent). */
  async getManifest(repository: string, reference: string): Promise<FetchedManifest> {
    const what = `manifest ${this.address}/${repository}:${reference}`;
    const res = await this.#request(what, `/v2/${repository}/manifests/${reference}`, {
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (!res.ok) throw httpError(what, res.status, await res.text());
    const bytes = Buffer.from(await res.arrayBuffer());
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    if (reference.startsWith("sha256:") && reference !== digest) {
      throw new ChalkError(Code.DataLoss, `${what}: content hashes to ${digest}`);
    }
    const mediaType =
      (res.headers.get("content-type") ?? "").split(";")[0]?.trim() ||
      ((JSON.parse(bytes.toString("utf8")) as { mediaType?: string }).mediaType ?? MEDIA_TYPE.manifest);
    return { bytes, mediaType, digest };
  }

  /** Whether the registry has the blob in `repository`. */
  async hasBlob(repository: string, digest: string): Promise<boolean> {
    const what = `blob ${digest}`;
    const res = await this.#request(what, `/v2/${repository}/blobs/${digest}`, { method: "HEAD" });
    if (res.status === 404) return false;
    if (!res.ok) throw httpError(what, res.status, "");
    return true;
  }

  /** Downloads a blob to `file`, verifying its digest; the file is removed on failure. */
  async downloadBlob(repository: string, digest: string, file: string): Promise<void> {
    const what = `blob ${this.address}/${repository}@${digest}`;
    const res = await this.#request(what, `/v2/${repository}/blobs/${digest}`);
    if (!res.ok || !res.body) throw httpError(what, res.status, await res.text());
    const hash = createHash("sha256");
    try {
      await pipeline(
        Readable.fromWeb(res.body as import("node:stream/web").ReadableStream),
        new Transform({
          transform(chunk: Buffer, _e, done) {
            hash.update(chunk);
            done(null, chunk);
          },
        }),
        createWriteStream(file),
      );
      const actual = `sha256:${hash.digest("hex")}`;
      if (actual !== digest) throw new ChalkError(Code.DataLoss, `${what}: content hashes to ${actual}`);
      const fh = await open(file, "r");
      await fh.sync().finally(() => fh.close());
    } catch (err) {
      await rm(file, { force: true });
      throw ChalkError.from(err, Code.Unavailable);
    }
  }

  /** Uploads a blob from a file (monolithic upload), unless the registry has it already. */
  async pushBlob(repository: string, digest: string, size: number, file: string): Promise<void> {
    if (await this.hasBlob(repository, digest)) return;
    const what = `upload of ${digest} to ${this.address}/${repository}`;
    const start = await this.#request(what, `/v2/${repository}/blobs/uploads/`, { method: "POST" });
    await start.body?.cancel();
    const location = start.headers.get("location");
    if (start.status !== 202 || !location) throw httpError(what, start.status, "");
    const url = new URL(location, this.#base);
    url.searchParams.set("digest", digest);
    const put = await this.#request(what, url.toString(), {
      method: "PUT",
      headers: { "content-type": "application/octet-stream", "content-length": String(size) },
      body: () => Readable.toWeb(createReadStream(file)) as unknown as RequestBody,
    });
    if (put.status !== 201) throw httpError(what, put.status, await put.text());
    await put.body?.cancel();
  }

  /** Uploads a manifest under a tag or its digest; returns the digest the registry reports. */
  async putManifest(
    repository: string,
    reference: string,
    mediaType: string,
    bytes: Uint8Array,
  ): Promise<string> {
    const what = `manifest ${this.address}/${repository}:${reference}`;
    const res = await this.#request(what, `/v2/${repository}/manifests/${reference}`, {
      method: "PUT",
      headers: { "content-type": mediaType },
      body: () => bytes as RequestBody,
    });
    if (res.status !== 201) throw httpError(what, res.status, await res.text());
    await res.body?.cancel();
    return (
      res.headers.get("docker-content-digest") ?? `sha256:${createHash("sha256").update(bytes).digest("hex")}`
    );
  }
}
