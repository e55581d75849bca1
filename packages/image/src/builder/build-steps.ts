import { mkdir, rename, rm } from "node:fs/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { invalidArgument } from "@chalk/core";
import { ImageSpecSchema, type Step, StepSchema } from "@chalk/proto/image/v1";
import type { SandboxRuntime } from "@chalk/sandbox";
import type { ImageBuildEvent } from "../build-events.js";
import { withoutContent } from "../spec.js";
import {
  aptCommands,
  pipCommands,
  runCommands,
  type StepCommand,
  workdirCommands,
} from "../step-commands.js";
import { BUILD_CA_DIR, type BuildCa } from "./build-ca.js";
import type { ImageDb } from "./image-db.js";
import type { BuiltLayer, LayerDirs } from "./layer-dirs.js";
import { type LayerCompression, layerFromFiles, layerFromUpperDir, type WrittenLayer } from "./layers.js";
import { type ImageConfig, type OciStore, sha256Digest } from "./oci-store.js";
import type { StepLimits } from "./step-limits.js";
import { runStep } from "./step-runner.js";

/** Label on build sandboxes. */
export const BUILD_LABEL = "chalk.image/build";
/** Label on build sandboxes: the pid of the builder that runs them (to stop those of dead builders). */
export const OWNER_LABEL = "chalk.image/owner-pid";

/** What the build has made so far on top of the base. */
export interface BuildState {
  layers: BuiltLayer[];
  chainId: string;
  env: Map<string, string>;
  workdir: string | undefined;
  history: NonNullable<ImageConfig["history"]>;
}

/** The chain id of a layer on top of `parent` (OCI image spec). */
export function chain(parent: string, diffId: string): string {
  return parent === "" ? diffId : sha256Digest(`${parent} ${diffId}`);
}

/** An environment map as a record. */
export function envRecord(env: Map<string, string>): Record<string, string> {
  return Object.fromEntries(env);
}

/** An image config's `Env` (`K=V` strings) as a map. */
export function envMap(list: readonly string[] | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of list ?? []) {
    const i = kv.indexOf("=");
    if (i > 0) m.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return m;
}

/** A one-line description of a step, for logs and image history. */
export function describeStep(step: Step): string {
  const k = step.kind;
  switch (k.case) {
    case "pipInstall":
      return `pip install ${k.value.packages.join(" ")}`;
    case "aptInstall":
      return `apt-get install ${k.value.packages.join(" ")}`;
    case "runCommands":
      return `RUN ${k.value.commands[0]}${k.value.commands.length > 1 ? ` (+${k.value.commands.length - 1} more)` : ""}`;
    case "env":
      return `ENV ${k.value.vars.map((v) => v.name).join(" ")}`;
    case "workdir":
      return `WORKDIR ${k.value.path}`;
    case "addFiles":
      return `COPY ${k.value.files.length} file(s) to ${k.value.files[0]?.path ?? "/"}`;
    default:
      return "unknown step";
  }
}

function stepCommands(step: Step): StepCommand[] {
  const k = step.kind;
  switch (k.case) {
    case "pipInstall":
      return pipCommands(k.value);
    case "aptInstall":
      return aptCommands(k.value);
    case "runCommands":
      return runCommands(k.value);
    case "workdir":
      return workdirCommands(k.value);
    default:
      return [];
  }
}

/** What {@link StepExecutor} works with. */
export interface StepExecutorContext {
  store: OciStore;
  db: ImageDb;
  layers: LayerDirs;
  /** Runs command steps; it must keep a sandbox's writable layer in `writableLayerDir`. */
  runtime: SandboxRuntime;
  compression: LayerCompression;
  stepTimeoutSecs: number;
  /** Memory, CPU and processes each step's sandbox may use. */
  stepLimits: StepLimits;
  buildCa: BuildCa | undefined;
}

/**
 * Runs the steps of a build, each (or its cached result) becoming one layer: `env` steps change only
 * the config; `addFiles` steps are written as a layer directly; command steps run in a gVisor
 * sandbox over the layers so far, and what they wrote becomes the layer. Steps are cached by
 * (parent layer chain, environment, working directory, step), so changing the last step rebuilds
 * only the last step.
 */
export class StepExecutor {
  constructor(private readonly c: StepExecutorContext) {}

  /** Runs (or takes from the cache) one step and adds its layer to the state. */
  async run(
    step: Step,
    index: number,
    count: number,
    state: BuildState,
    emit: (e: ImageBuildEvent) => void,
  ): Promise<void> {
    const { db, store } = this.c;
    const description = describeStep(step);
    const started = Date.now();
    if (step.kind.case === "env") {
      for (const v of step.kind.value.vars) state.env.set(v.name, v.value);
      emit({ type: "step", index, count, description, cached: true });
      state.history.push({ created_by: description, empty_layer: true });
      emit({ type: "step-done", index, cached: true, durationMs: 0, layerDigest: "" });
      return;
    }
    const stepBytes = toBinary(
      StepSchema,
      withoutContent(create(ImageSpecSchema, { steps: [step] })).steps[0]!,
    );
    const cacheKey = sha256Digest(
      JSON.stringify([
        state.chainId,
        [...state.env].sort(),
        state.workdir ?? "",
        Buffer.from(stepBytes).toString("hex"),
      ]),
    );
    const hit = db.step(cacheKey);
    if (hit && (hit.diffId === "" || (await store.hasBlob(hit.layerDigest)))) {
      emit({ type: "step", index, count, description, cached: true });
      const layer =
        hit.diffId === ""
          ? undefined
          : {
              digest: hit.layerDigest,
              diffId: hit.diffId,
              size: hit.layerSize,
              mediaType: hit.mediaType,
              entries: 1,
            };
      applyLayer(state, step, description, layer);
      emit({
        type: "step-done",
        index,
        cached: true,
        durationMs: Date.now() - started,
        layerDigest: hit.layerDigest,
      });
      return;
    }
    emit({ type: "step", index, count, description, cached: false });
    const lowers = await this.c.layers.ensure(state.layers);
    const blobTmp = store.tempPath(".blob");
    let layer: WrittenLayer;
    let upper: string | undefined;
    try {
      if (step.kind.case === "addFiles") {
        for (const f of step.kind.value.files) {
          if (f.content.byteLength === 0 && f.sizeBytes > 0n) {
            throw invalidArgument(
              "spec.steps.add_files",
              `${f.path}: the spec carries no content for this file`,
            );
          }
          if (f.sizeBytes > 0n && sha256Digest(f.content) !== `sha256:${f.sha256}`) {
            throw invalidArgument("spec.steps.add_files", `${f.path}: content does not match its sha256`);
          }
        }
        layer = await layerFromFiles(step.kind.value.files, lowers, blobTmp, this.c.compression);
      } else {
        upper = store.tempPath(".upper");
        await mkdir(upper);
        await runStep({
          runtime: this.c.runtime,
          layers: lowers,
          upperDir: upper,
          env: envRecord(state.env),
          workdir: step.kind.case === "workdir" ? "/" : (state.workdir ?? "/"),
          commands: stepCommands(step),
          onOutput: (stream, text) => emit({ type: "log", step: index, stream, text }),
          timeoutSecs: this.c.stepTimeoutSecs,
          limits: this.c.stepLimits,
          labels: { [BUILD_LABEL]: "1", [OWNER_LABEL]: String(process.pid) },
          mounts: this.c.buildCa ? [{ source: this.c.buildCa.hostDir, target: BUILD_CA_DIR }] : [],
          buildEnv: this.c.buildCa?.env ?? {},
        });
        layer = await layerFromUpperDir(upper, blobTmp, this.c.compression);
      }
      if (layer.entries === 0) {
        db.putStep({ cacheKey, diffId: "", layerDigest: "", layerSize: 0, mediaType: "" }, Date.now());
        applyLayer(state, step, description, undefined);
      } else {
        if (!(await store.hasBlob(layer.digest))) await store.adoptBlob(blobTmp, layer.digest);
        // The upper dir is this layer unpacked for overlayfs: keep it as the layer's directory.
        if (upper) {
          await rename(upper, this.c.layers.path(layer.diffId)).then(
            () => {
              upper = undefined;
            },
            () => undefined,
          );
        }
        db.putStep(
          {
            cacheKey,
            diffId: layer.diffId,
            layerDigest: layer.digest,
            layerSize: layer.size,
            mediaType: layer.mediaType,
          },
          Date.now(),
        );
        applyLayer(state, step, description, layer);
      }
    } finally {
      await rm(blobTmp, { force: true });
      if (upper) await rm(upper, { recursive: true, force: true });
    }
    emit({
      type: "step-done",
      index,
      cached: false,
      durationMs: Date.now() - started,
      layerDigest: layer.entries === 0 ? "" : layer.digest,
    });
  }
}

function applyLayer(
  state: BuildState,
  step: Step,
  description: string,
  layer: WrittenLayer | undefined,
): void {
  if (step.kind.case === "workdir") state.workdir = step.kind.value.path;
  if (!layer) {
    state.history.push({ created_by: description, empty_layer: true });
    return;
  }
  state.layers.push({
    descriptor: { mediaType: layer.mediaType, digest: layer.digest, size: layer.size },
    diffId: layer.diffId,
  });
  state.chainId = chain(state.chainId, layer.diffId);
  state.history.push({ created_by: description });
}
