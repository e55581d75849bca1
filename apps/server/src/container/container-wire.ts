import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ContainerInfoSchema } from "@chalk/proto/container/v1";
import { readinessToWire, runPhaseToWire, statusToWire } from "@chalk/spec";
import type { ContainerRecord } from "../backend/container-records.js";

/** Spelling of secret sources in `SecretRef.kind`: the names of `SecretSource`'s fields in `.proto` text. */
const SECRET_KIND_ON_WIRE = { secret: "secret", integration: "integration", localEnv: "local_env" } as const;

/** A container record as the API shows it: references to secrets, never values. */
export function containerToWire(r: ContainerRecord): MessageInitShape<typeof ContainerInfoSchema> {
  return {
    id: r.id,
    name: r.name,
    status: statusToWire(r.status),
    statusMessage: r.statusMessage,
    createdAtMs: BigInt(r.createdAt),
    stoppedAtMs: BigInt(r.stoppedAt ?? 0),
    address: r.address,
    imageUri: r.imageUri,
    imageDigest: r.imageDigest,
    resources: { cpuMillis: r.cpuMillis, memoryBytes: BigInt(r.memoryBytes), gpu: r.gpu },
    env: r.env,
    secrets: r.secrets.map((s) => ({ kind: SECRET_KIND_ON_WIRE[s.kind], name: s.name, keys: s.keys ?? [] })),
    volumes: r.volumes,
    port: r.port,
    entrypoint: r.entrypoint,
    sandboxId: r.sandboxId,
    ...(r.exitCode === undefined ? {} : { exitCode: r.exitCode }),
    runPhase: runPhaseToWire(r.phase),
    reason: r.reason,
    ...(r.readiness ? { readiness: readinessToWire(r.readiness) } : {}),
  };
}
