import type { Readable } from "node:stream";

/** A signal, by name (`"SIGTERM"`, `"TERM"`) or Linux number (`15`). */
export type SignalLike = string | number;

/** A host directory mounted into a sandbox. */
export interface SandboxMount {
  /** Absolute host path of a directory. */
  source: string;
  /** Absolute path inside the sandbox. */
  target: string;
  /** Mount read-only. Default false. */
  readOnly?: boolean;
}

/**
 * Options for {@link SandboxRuntime.create}. Exactly one of `image` and `rootfs` names what to run.
 *
 * Options that name host paths (`rootfs`, `mounts`, `logPath`, `writableLayerDir`) are for
 * in-process runtimes (`LocalRuntime`), whose callers own the machine; a Chalk server takes none of
 * them from a client, so `connectSandboxes()` refuses them.
 */
export interface SandboxCreateOptions {
  /**
   * An image reference, as a `Container` takes it (`python:3.12-slim`, an image service reference,
   * an image the operator configured), resolved by the runtime's image store: a Chalk server's.
   * The image's environment and working directory apply under `env` and `workdir`.
   */
  image?: string;
  /**
   * Root filesystem (in-process runtimes): a host directory, or layer directories bottom first.
   * Never written to: the sandbox writes to its own layer, deleted with it.
   */
  rootfs?: string | readonly string[];
  /** The init process. Omitted: an idle process that keeps the sandbox up until stopped. */
  command?: readonly string[];
  /** Environment of the init process and default environment of every exec. */
  env?: Record<string, string>;
  /** Working directory (absolute) of the init process and default of every exec. Default `/`. */
  workdir?: string;
  /** CPU limit: `"2"`, `"0.5"`, `"500m"`. Omitted: no limit. */
  cpu?: string;
  /** Memory limit: `"512Mi"`, `"2Gi"`. Omitted: no limit. Overuse ends in an OOM kill. */
  memory?: string;
  /**
   * Maximum number of processes inside the sandbox (its `RLIMIT_NPROC`, which gVisor enforces: a
   * fork bomb gets `EAGAIN`). Omitted: the runtime default, 1024 (`DEFAULT_PIDS`).
   */
  pids?: number;
  /**
   * Disk limit of the sandbox's writable layer, a memory-style quantity (`"10Gi"`, `"512Mi"`):
   * everything its processes write to the root filesystem (`/tmp` included) counts against it, and
   * a write past it fails with `ENOSPC` (Kubernetes calls this limit `ephemeral-storage`). Volumes
   * and other mounts do not count. Omitted: no limit but the host's disk. At least 16 Mi.
   */
  disk?: string;
  /**
   * Run the init process (`command`, or the idle one) under a small reaping init, as
   * `docker run --init` does: Debian's static `tini` as PID 1 reaps orphaned processes (which a
   * plain program as PID 1 leaves as zombies) and forwards signals to the init process. Its exit
   * code passes through; a signal that ends it reads as exit code 128 + N. `false`: the command
   * itself is PID 1. Default true.
   */
  init?: boolean;
  /**
   * Networking. Omitted or `false`: no network at all. `true` or an object: the sandbox gets its own
   * network namespace with outbound access; the host reaches `ports` at {@link SandboxInfo.address}.
   */
  network?: boolean | { ports?: readonly number[] };
  /** Host directories to mount. */
  mounts?: readonly SandboxMount[];
  /** Free-form labels for listing. */
  labels?: Record<string, string>;
  /**
   * Host file that receives the init process's stdout and stderr (appended). When it would grow
   * past `logMaxBytes` it becomes `<logPath>.1` (replacing that) and a new file starts, so the two
   * hold at most twice that, the newest output, at every moment. Omitted: discarded.
   */
  logPath?: string;
  /** Bytes of `logPath` before it rotates (see `logPath`). Default 8 MiB (`DEFAULT_LOG_MAX_BYTES`). */
  logMaxBytes?: number;
  /** Requested id (`[a-z0-9][a-z0-9_.-]{0,62}`). Omitted: generated. */
  id?: string;
  /**
   * A host directory, owned by the caller, that receives the sandbox's writable layer (in-process
   * runtimes): the files the sandbox's processes wrote, with deletions as overlayfs whiteouts. It is
   * kept after `stop()`, so an image builder can turn it into an OCI layer. Default: a layer of the
   * runtime's own, deleted with the sandbox.
   */
  writableLayerDir?: string;
}

/** Lifecycle state of a sandbox. */
export type SandboxState = "created" | "running" | "stopped";

/** What a runtime knows about a sandbox. */
export interface SandboxInfo {
  /** The sandbox id. */
  id: string;
  /** Current state. */
  state: SandboxState;
  /** When it was created. */
  createdAt: Date;
  /** Labels given at creation. */
  labels: Record<string, string>;
  /** Host-reachable IPv4 address of the sandbox, when it has a network. */
  address: string | undefined;
  /** Host pid of the sandbox process, while it runs. */
  hostPid: number | undefined;
  /** Resource limits in force. */
  resources: {
    cpu: string | undefined;
    memory: string | undefined;
    pids: number | undefined;
    disk?: string | undefined;
  };
}

/** Options for {@link Sandbox.spawn}. */
export interface SpawnOptions {
  /** Extra environment, over the sandbox's. */
  env?: Record<string, string>;
  /** Working directory (absolute). Default: the sandbox's. */
  workdir?: string;
  /** Seconds after which the process group is killed (SIGKILL); the exit then says `timedOut`. */
  timeoutSecs?: number;
  /** Run on a pseudo-terminal of this size. stdout then carries the terminal; stderr is empty. */
  pty?: { cols: number; rows: number };
  /**
   * Cancels the start: while the process has not started (it may wait for an exec slot on a server),
   * an abort makes the call reject with the signal's reason, and nothing starts. Once the process
   * started, the signal does nothing to it (signal it, or let `timeoutSecs` end it).
   */
  signal?: AbortSignal;
}

/** Options for {@link Sandbox.exec}: the spawn options, applied to a buffered run. */
export interface ExecOptions extends Omit<SpawnOptions, "pty"> {
  /** Bytes written to stdin before EOF. Default: stdin is closed at once. */
  stdin?: Uint8Array | string;
}

/** How a process ended. */
export interface ProcessExit {
  /** Exit code, or null when a signal ended the process. */
  exitCode: number | null;
  /** Name of the signal that ended it (`"SIGKILL"`), or null when it exited. */
  signal: string | null;
  /** True when the process was killed because `timeoutSecs` passed. */
  timedOut: boolean;
  /** True when the sandbox's memory limit was hit and the OOM killer ended the process. */
  oomKilled: boolean;
}

/** Result of a buffered {@link Sandbox.exec}. */
export interface ExecResult extends ProcessExit {
  /** Everything the process wrote to stdout. */
  stdout: Uint8Array;
  /** Everything the process wrote to stderr. */
  stderr: Uint8Array;
  /** stdout decoded as UTF-8. */
  stdoutText: string;
  /** stderr decoded as UTF-8. */
  stderrText: string;
}

/** The writable end of a process's stdin. */
export interface ProcessStdin {
  /** Writes bytes (strings as UTF-8); resolves when the process side accepted them (backpressure). */
  write(data: Uint8Array | string): Promise<void>;
  /** Closes stdin: the process reads EOF. */
  end(): Promise<void>;
}

/**
 * A process running in a sandbox. stdout and stderr are Node `Readable` streams of `Uint8Array`
 * chunks with backpressure: a reader that stops reading stalls the writer inside the sandbox, and
 * nothing buffers without bound. Read both (or neither will progress once a pipe fills).
 */
export interface Process {
  /** Pid inside the sandbox. */
  readonly pid: number;
  /** The process's stdout (with a PTY: the terminal's output). */
  readonly stdout: Readable;
  /** The process's stderr (empty with a PTY). */
  readonly stderr: Readable;
  /** The process's stdin. */
  readonly stdin: ProcessStdin;
  /** Sends a signal to the process's process group (the process and its children). */
  signal(signal: SignalLike): Promise<void>;
  /** Resizes the PTY. Fails with failed_precondition without a PTY. */
  resize(cols: number, rows: number): Promise<void>;
  /** Resolves when the process has ended. */
  wait(): Promise<ProcessExit>;
}

/** Options for {@link Sandbox.stop}. */
export interface SandboxStopOptions {
  /** Seconds between SIGTERM and SIGKILL. Default 0: SIGKILL at once. */
  gracePeriodSeconds?: number;
}

/**
 * One gVisor sandbox. The same interface in-process (`@chalk/sandbox/local`) and remote
 * ({@link connectSandboxes}).
 */
export interface Sandbox extends AsyncDisposable {
  /** The sandbox id. */
  readonly id: string;
  /** Fetches the current state. */
  info(): Promise<SandboxInfo>;
  /** Starts a process and returns its handle once it runs. */
  spawn(argv: readonly string[], options?: SpawnOptions): Promise<Process>;
  /**
   * Runs a command to completion and returns its output, buffered. An options object may close the
   * argument list: `exec("sleep", "9", { timeoutSecs: 5 })`. A timeout throws deadline_exceeded
   * with the partial output in `details`.
   */
  exec(...args: [...argv: string[], options: ExecOptions] | string[]): Promise<ExecResult>;
  /** Sends a signal to every process in the sandbox. */
  signal(signal: SignalLike): Promise<void>;
  /** Resolves when the init process ends (for a sandbox created with a `command`). */
  wait(): Promise<ProcessExit>;
  /**
   * Stops (SIGTERM to PID 1, which the reaping init forwards to the entrypoint; the grace period;
   * SIGKILL to every process) and deletes the sandbox with its writable layer.
   */
  stop(options?: SandboxStopOptions): Promise<void>;
}

/** Creates, finds and lists sandboxes. Implemented in-process and by the gRPC client. */
export interface SandboxRuntime {
  /** Creates and starts a sandbox. */
  create(options: SandboxCreateOptions): Promise<Sandbox>;
  /** Reattaches to an existing sandbox (not_found when unknown). */
  get(id: string): Promise<Sandbox>;
  /** Lists sandboxes, optionally only those carrying all of `labels`. */
  list(options?: { labels?: Record<string, string> }): Promise<SandboxInfo[]>;
}
