import type { MessageInitShape } from "@bufbuild/protobuf";
import { ChalkError, Code } from "@chalk/core";
import type {
  ContainerInfo as ContainerInfoMessage,
  ContainerService,
  ContainerSpecSchema,
} from "@chalk/proto/container/v1";
import type { Client, Transport } from "@chalk/rpc";
import { secretToProto } from "@chalk/secrets";
import {
  checkReadiness,
  checkVolumes,
  type EndReason,
  readinessToWire,
  runPhaseFromWire,
  statusFromWire,
} from "@chalk/spec";
import { Volume } from "@chalk/volume";
import type { ContainerCreateOptions, ContainerInfo, ContainerRunOptions } from "./container-options.js";
import { imageSourceOf, uploadsOf } from "./image-source.js";
import { planUploads } from "./upload-plan.js";

/** The SDK's view of a wire record. */
export function infoOf(m: ContainerInfoMessage): ContainerInfo {
  return {
    status: statusFromWire(m.status) ?? "Unknown",
    statusMessage: m.statusMessage,
    phase: runPhaseFromWire(m.runPhase),
    reason: (m.reason || undefined) as EndReason | undefined,
    createdAt: new Date(Number(m.createdAtMs)),
    stoppedAt: m.stoppedAtMs > 0n ? new Date(Number(m.stoppedAtMs)) : undefined,
    address: m.address || undefined,
    exitCode: m.exitCode,
    sandboxId: m.sandboxId,
    resources: {
      cpuMillis: m.resources?.cpuMillis ?? 0,
      memoryBytes: Number(m.resources?.memoryBytes ?? 0n),
      gpu: m.resources?.gpu || undefined,
    },
  };
}

function uploadVolumeName(): string {
  return `chalk-upload-${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;
}

/** What one run needs from the {@link Container} that starts it. */
export interface RunContext {
  client: Client<typeof ContainerService>;
  transport: Transport;
  name: string;
  options: ContainerCreateOptions;
  /** Called with the record once the server accepted the container (its id is known then). */
  onAccepted(record: ContainerInfoMessage): void;
}

/**
 * A run, as the SDK drives it: the spec goes to the server first (CreateContainer), so the
 * container exists, Pending with its name reserved, before any local file is uploaded; then the
 * uploads go into the volume the server made for it; then StartContainer streams the build log and
 * the outcome. A stop from anywhere ends the run; the server removes what it owned.
 */
export async function runContainer(
  ctx: RunContext,
  run: ContainerRunOptions,
  readyTimeoutSecs: number | undefined,
): Promise<ContainerInfoMessage> {
  const o = ctx.options;
  const source = await imageSourceOf(o.image);
  const spec: MessageInitShape<typeof ContainerSpecSchema> = {
    name: ctx.name,
    image: source === undefined ? {} : { source },
    cpu: o.cpu ?? "",
    memory: o.memory ?? "",
    gpu: o.gpu ?? "",
    env: { ...(o.env ?? {}) },
    secrets: (o.secrets ?? []).map(secretToProto),
    volumes: checkVolumes(o.volumes).map(([name, mountPath]) => ({ name, mountPath, readOnly: false })),
    port: o.port ?? 0,
    entrypoint: [...(o.entrypoint ?? [])],
    ...(o.readiness ? { readiness: readinessToWire(checkReadiness(o.readiness, o.port)) } : {}),
  };
  const uploads = uploadsOf(o.image);
  const plan = uploads.length > 0 ? planUploads(uploads) : undefined;
  const uploadVolume = plan ? uploadVolumeName() : undefined;
  if (plan && uploadVolume) spec.upload = { volumeName: uploadVolume, targets: plan.targets };
  const created = await ctx.client.createContainer({ spec, readyTimeoutSecs: readyTimeoutSecs ?? 0 });
  if (!created.container) throw new ChalkError(Code.Internal, "the server sent no container");
  const id = created.container.id;
  ctx.onAccepted(created.container);
  if (plan && uploadVolume) {
    // The server made the volume; writing never creates it again, so a stop (which deletes it)
    // makes the upload fail instead of leaving a volume behind.
    const volume = new Volume(uploadVolume, { transport: ctx.transport, createOnWrite: false });
    try {
      await volume.batchUpload(
        (b) => {
          for (const e of plan.entries) {
            if (e.kind === "file")
              b.putFileFromPath(e.volumePath, e.source, e.mode === undefined ? {} : { mode: e.mode });
            else b.putDir(e.source, e.volumePath, { skip: e.skip ?? [] });
          }
        },
        run.onUploadProgress ? { onProgress: run.onUploadProgress } : {},
      );
    } catch (err) {
      const now = await ctx.client.getContainer({ ref: { case: "id", value: id } }).catch(() => undefined);
      if (now?.container && statusFromWire(now.container.status) !== "Pending") return now.container;
      // The upload failed on our side: the container is ours to stop (the server removes the volume).
      await ctx.client.stopContainer({ ref: { case: "id", value: id } }).catch(() => undefined);
      const e = ChalkError.from(err);
      throw new ChalkError(
        e.code,
        `container ${JSON.stringify(ctx.name)}: uploading local files failed: ${e.rawMessage}`,
        {
          cause: err,
          details: { id, phase: "upload" },
        },
      );
    }
  }
  let record: ContainerInfoMessage | undefined;
  for await (const res of ctx.client.startContainer({ ref: { case: "id", value: id } })) {
    if (res.event.case === "buildLog") run.onBuildLog?.({ ...res.event.value });
    else if (res.event.case === "container") record = res.event.value;
  }
  if (!record) throw new ChalkError(Code.Internal, "the server ended the run without a container");
  return record;
}

/**
 * The error a run that did not end Running (or Succeeded) throws, from its record: stopped →
 * aborted; the run deadline or the readiness timeout → deadline_exceeded; anything else →
 * failed_precondition with the server's message. `details` carries the id, status, message, the
 * phase the run ended in, and the reason.
 */
export function runError(name: string, m: ContainerInfoMessage): ChalkError {
  const info = infoOf(m);
  const details = {
    id: m.id,
    status: info.status,
    statusMessage: info.statusMessage,
    phase: info.phase ?? null,
    reason: m.reason,
  };
  if (info.status === "Stopped") {
    return new ChalkError(
      Code.Aborted,
      `container ${JSON.stringify(name)} was stopped (${info.statusMessage || "by request"})`,
      {
        details,
      },
    );
  }
  const code =
    m.reason === "DeadlineExceeded" || m.reason === "ReadinessTimeout"
      ? Code.DeadlineExceeded
      : Code.FailedPrecondition;
  return new ChalkError(
    code,
    `container ${JSON.stringify(name)} is ${info.status}: ${info.statusMessage || "no reason given"}`,
    {
      details,
    },
  );
}
