import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { decodeImageSpec, parseReference } from "@chalk/image";
import {
  type ImageBuilder,
  type ImageConfig,
  type ImageManifest,
  MEDIA_TYPE,
  RegistryClient,
} from "@chalk/image/builder";
import { checkImageReference, type ImageSource } from "@chalk/spec";
import type { BackendImage, BackendImages, BuildLogLine } from "../backend/compute-backend.js";

/**
 * Images of the Kubernetes backend. Nodes pull every image themselves, so every image is a
 * registry reference by digest:
 * - a spec is got or built by the server's image builder (steps run in gVisor on the server's
 *   machine) and pushed to the configured registry, which the nodes pull from;
 * - a reference is resolved to its manifest digest in its registry (a reference without a registry
 *   names the configured one), and its config is read for env, workdir and entrypoint, without
 *   pulling its layers.
 * The locator handed back is `registry/repository@sha256:…`.
 */
export class KubernetesImages implements BackendImages {
  readonly #clients = new Map<string, RegistryClient>();

  constructor(
    private readonly builder: ImageBuilder,
    private readonly registry: { address: string; insecure: boolean },
  ) {}

  check(source: ImageSource, field: string): void {
    if (source.kind === "spec") decodeImageSpec(source.spec, `${field}.spec`);
    else checkImageReference(source.uri, `${field}.uri`);
  }

  #client(address: string): RegistryClient {
    let c = this.#clients.get(address);
    if (!c) {
      c = new RegistryClient({
        address,
        ...(address === this.registry.address ? { insecure: this.registry.insecure } : {}),
      });
      this.#clients.set(address, c);
    }
    return c;
  }

  async resolve(
    source: ImageSource,
    environment: string,
    onLog: (line: BuildLogLine) => void,
    signal: AbortSignal,
  ): Promise<BackendImage> {
    if (source.kind === "uri") return this.#reference(source.uri);
    let steps = 0;
    const image = await this.builder.resolve(decodeImageSpec(source.spec, "spec.image.spec"), {
      environment,
      signal,
      onEvent(e) {
        if (e.type === "step") {
          steps = e.count;
          const mark = e.cached ? " (cached)" : "";
          onLog({ step: e.index, steps, text: `[step ${e.index + 1}/${e.count}] ${e.description}${mark}\n` });
        } else if (e.type === "log") {
          onLog({ step: e.step, steps, text: e.text });
        }
      },
    });
    if (image.imageUri.startsWith("local/"))
      throw new ChalkError(Code.Internal, "the image builder has no registry configured");
    return {
      imageUri: image.imageUri,
      digest: image.digest,
      locator: image.imageUri,
      env: image.env,
      workdir: image.workdir,
      entrypoint: image.entrypoint,
      cached: image.cached,
    };
  }

  /** A reference resolved to its digest and config in its registry, without pulling layers. */
  async #reference(uri: string): Promise<BackendImage> {
    const ref = parseReference(uri, "spec.image.uri");
    const address = ref.registry ?? this.registry.address;
    const client = this.#client(address);
    let manifest = await client.getManifest(ref.repository, ref.digest ?? ref.tag ?? "latest");
    let parsed = JSON.parse(manifest.bytes.toString("utf8")) as ImageManifest & {
      manifests?: { digest: string; platform?: { os?: string; architecture?: string } }[];
    };
    if (manifest.mediaType === MEDIA_TYPE.index || manifest.mediaType === MEDIA_TYPE.dockerManifestList) {
      const pick = parsed.manifests?.find(
        (m) => m.platform?.os === "linux" && m.platform.architecture === "amd64",
      );
      if (!pick) throw new ChalkError(Code.FailedPrecondition, `image ${uri} has no linux/amd64 manifest`);
      manifest = await client.getManifest(ref.repository, pick.digest);
      parsed = JSON.parse(manifest.bytes.toString("utf8")) as typeof parsed;
    }
    const dir = await mkdtemp(join(tmpdir(), "chalk-k8s-config-"));
    let config: ImageConfig;
    try {
      const file = join(dir, "config.json");
      await client.downloadBlob(ref.repository, parsed.config.digest, file);
      config = JSON.parse(await readFile(file, "utf8")) as ImageConfig;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const env: Record<string, string> = {};
    for (const e of config.config?.Env ?? []) {
      const i = e.indexOf("=");
      if (i > 0) env[e.slice(0, i)] = e.slice(i + 1);
    }
    const locator = `${address}/${ref.repository}@${manifest.digest}`;
    return {
      imageUri: uri,
      digest: "",
      locator,
      env,
      workdir: config.config?.WorkingDir || undefined,
      entrypoint: config.config?.Entrypoint ?? [],
      cached: true,
    };
  }
}
