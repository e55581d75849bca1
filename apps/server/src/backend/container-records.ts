import type {
  ContainerStatus,
  EndReason,
  ReadinessSpec,
  RunPhase,
  SecretRef,
  VolumeMountSpec,
} from "@chalk/spec";

/** One container as the server keeps it: what was asked for, and where its lifecycle stands. */
export interface ContainerRecord {
  /** UUID. */
  id: string;
  /** The environment it belongs to. */
  environment: string;
  /** Its name: unique among the environment's active containers. */
  name: string;
  /** Lifecycle status. */
  status: ContainerStatus;
  /** Pending: the phase the run is in. Failed or Stopped before it ran: the phase it ended in. */
  phase: RunPhase | undefined;
  /** Why the status is what it is. */
  statusMessage: string;
  /** Why it ended, as one word (`OOMKilled`, `Stopped`); empty while active. */
  reason: EndReason | "";
  /** Unix milliseconds. */
  createdAt: number;
  /** Unix milliseconds; undefined while active. */
  stoppedAt: number | undefined;
  /** Unix milliseconds by which the run must be Running (the run deadline). */
  deadlineAt: number;
  /** Where the image lives (empty until it is resolved). */
  imageUri: string;
  /** Digest of the image spec (empty for an image given by reference). */
  imageDigest: string;
  /** Resources in force. */
  cpuMillis: number;
  memoryBytes: number;
  /** GPU as requested (`""`: none). */
  gpu: string;
  /** Plaintext environment. */
  env: Record<string, string>;
  /** Secret references (never values). */
  secrets: SecretRef[];
  /** Named volumes. */
  volumes: VolumeMountSpec[];
  /** The exposed port; 0: none. */
  port: number;
  /** The main process as run (the spec's, or the image's once resolved). */
  entrypoint: string[];
  /** When it counts as ready. */
  readiness: ReadinessSpec | undefined;
  /** The temporary upload volume the container owns, if any. */
  uploadVolume: string | undefined;
  /** True once the upload volume and the run's local-env secrets were removed. */
  cleanedUp: boolean;
  /** Where clients reach `port` (empty without one, or before it runs). */
  address: string;
  /** The sandbox that runs it (empty before it is created). */
  sandboxId: string;
  /** Exit code of the entrypoint once it ended. */
  exitCode: number | undefined;
}

/** Fields an update may set (a status change, or what a phase learned). */
export type ContainerUpdate = Partial<Omit<ContainerRecord, "id" | "environment" | "name" | "createdAt">>;

/** A reference to a container: by id or by name. */
export type ContainerRef = { id: string } | { name: string };

/**
 * Where container records live, with their history after the containers end, and the atomic
 * reservation of names. Every change is atomic: {@link ContainerRecords.update} reads, decides and
 * writes as one step, so two owners never both move a container (a stop and a run's next phase).
 */
export interface ContainerRecords {
  /**
   * Records a new container, reserving its name: already_exists when an active container of the
   * environment holds it. Atomic: of two reservations of one name, exactly one succeeds.
   */
  reserve(record: ContainerRecord): Promise<void>;
  /** A container by id, in any environment (for the server's own bookkeeping). */
  get(id: string): Promise<ContainerRecord | undefined>;
  /** A container of the environment by id, or by name (the active one, else the newest). */
  find(environment: string, ref: ContainerRef): Promise<ContainerRecord | undefined>;
  /** The environment's containers, newest first. */
  list(environment: string, options: { status?: ContainerStatus; limit: number }): Promise<ContainerRecord[]>;
  /** Every container in an active status, in every environment. */
  active(): Promise<ContainerRecord[]>;
  /** Ended containers whose temporary resources were not removed yet. */
  uncleaned(): Promise<ContainerRecord[]>;
  /** Containers per status over every environment (for metrics). */
  countByStatus(): Record<ContainerStatus, number>;
  /**
   * Changes a container atomically: `change` sees the current record and returns the update to
   * apply, or undefined to leave it as it is. Resolves with the new record, or undefined when
   * nothing changed (or the container does not exist).
   */
  update(
    id: string,
    change: (current: ContainerRecord) => ContainerUpdate | undefined,
  ): Promise<ContainerRecord | undefined>;
  /** Closes the store. */
  close(): void;
}
