import { ChalkError } from "@chalk/core";
import type { RunPhase } from "@chalk/spec";
import type { BackendContainer, BackendImage } from "../backend/compute-backend.js";
import type { Containers, Run } from "./containers.js";
import { waitForReadiness } from "./readiness.js";

type FailureReason = "BuildFailed" | "CreateFailed" | "UploadFailed" | "ReadinessTimeout";

const FAILURE: Record<RunPhase, { prefix: string; reason: FailureReason }> = {
  upload: { prefix: "upload: ", reason: "UploadFailed" },
  build: { prefix: "image: ", reason: "BuildFailed" },
  create: { prefix: "start: ", reason: "CreateFailed" },
  readiness: { prefix: "", reason: "ReadinessTimeout" },
};

/**
 * Drives a started run through its phases: build (get or build the image), create (the backend
 * creates and starts the container), readiness (the check, or a short settling of the entrypoint),
 * then Running. Each step is a lifecycle transition the store applies atomically; when one does not
 * apply, a stop or the deadline has ended the run, and the worker returns at once (whoever ended the
 * run stops what it started). A failing phase ends the container Failed, in that phase.
 */
export async function driveRun(c: Containers, run: Run): Promise<void> {
  const { id, environment, spec } = run;
  const signal = run.abort.signal;
  const log = c.log.child({ container: id, env: environment, name: spec.name });

  const fail = async (phase: RunPhase, err: unknown): Promise<void> => {
    if (signal.aborted) return; // a stop or the deadline ended the run; that is not this phase's failure
    const e = ChalkError.from(err);
    const { prefix, reason } = FAILURE[phase];
    const failed = await c.apply(id, { type: "failed", reason, message: `${prefix}${e.rawMessage}` });
    if (!failed) return;
    log.warn({ phase, error: e.message }, "run failed");
    await c.finish(id);
  };

  // build
  const began = performance.now();
  let image: BackendImage;
  try {
    image = await c.backend.images.resolve(
      spec.image,
      environment,
      (line) => {
        c.metrics.bytesStreamed.inc({ kind: "build_log" }, Buffer.byteLength(line.text));
        c.emit(run, { kind: "build_log", log: line });
      },
      signal,
    );
    c.metrics.buildSeconds.observe(
      { result: image.cached ? "cached" : "built" },
      (performance.now() - began) / 1000,
    );
  } catch (err) {
    c.metrics.buildSeconds.observe({ result: "failed" }, (performance.now() - began) / 1000);
    return fail("build", err);
  }
  const command = spec.entrypoint.length > 0 ? spec.entrypoint : image.entrypoint;
  const built = await c.apply(id, {
    type: "built",
    imageUri: image.imageUri,
    imageDigest: image.digest,
    entrypoint: command,
  });
  if (!built) return;

  // create
  let container: BackendContainer;
  try {
    container = await c.backend.createContainer(
      {
        id,
        environment,
        name: spec.name,
        image,
        command,
        env: { ...image.env, ...spec.env },
        secrets: run.secrets,
        mounts: run.mounts,
        resources: run.resources,
        port: spec.port,
      },
      signal,
    );
  } catch (err) {
    return fail("create", err);
  }
  c.live.set(id, { container });
  const created = await c.apply(id, {
    type: "created",
    sandboxId: container.sandboxId,
    address: container.address ?? "",
  });
  if (!created) return;
  c.watch(id, container);

  // readiness
  const outcome = await waitForReadiness({
    id,
    container,
    readiness: spec.readiness,
    hasEntrypoint: command.length > 0,
    logs: c.backend.logs,
    signal,
    ...(c.settleMs === undefined ? {} : { settleMs: c.settleMs }),
  });
  if (outcome.kind === "ready") {
    if (await c.apply(id, { type: "ready" })) log.info({ address: container.address }, "container running");
  } else if (outcome.kind === "timeout") {
    await fail("readiness", new Error(outcome.message));
  }
  // "ended": the watcher records how the main process ended; "aborted": a stop or the deadline.
}
