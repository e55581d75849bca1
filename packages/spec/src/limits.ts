/**
 * Limits on what one container request may carry, defined once for the SDK (which checks them
 * before sending anything) and the server (which checks them again, for every client).
 */
export const CONTAINER_LIMITS = {
  /** Environment variables per container. */
  envVars: 1000,
  /** Bytes of all environment names and values together. */
  envBytes: 1024 * 1024,
  /** Length of one environment variable name. */
  envNameLength: 256,
  /** Arguments of an entrypoint or exec command. */
  argvLength: 4096,
  /** Bytes of an entrypoint or exec command. */
  argvBytes: 1024 * 1024,
  /** Volumes per container. */
  volumes: 32,
  /** Secrets per container. */
  secrets: 256,
  /** Directories of uploaded local files mounted into one container. */
  uploadTargets: 10_000,
  /** Bytes of an image spec sent with a run (`Image` specs carry copied files' bytes). */
  imageSpecBytes: 1024 * 1024,
  /** Bytes of stdin an exec may send. */
  execStdinBytes: 4 * 1024 * 1024,
  /** Bytes of stdout, and separately of stderr, that an exec returns; more ends the command. */
  execOutputBytes: 3 * 1024 * 1024,
  /** Longest exec timeout, in seconds. */
  execTimeoutSecs: 24 * 3600,
  /** Longest stop grace period, in seconds. */
  gracePeriodSeconds: 3600,
  /** Longest run deadline (`readyTimeoutSecs`), in seconds. */
  readyTimeoutSecs: 24 * 3600,
  /** Longest readiness timeout, in seconds. */
  readinessTimeoutSecs: 24 * 3600,
  /** Bytes of a readiness log line. */
  readinessLogLineBytes: 1024,
  /** Containers one list call returns at most. */
  listLimit: 1000,
} as const;

/** Defaults that apply when a request leaves a value out. */
export const CONTAINER_DEFAULTS = {
  /**
   * The run deadline, in seconds: upload, build, create and readiness together. Generous, because a
   * first build of an image (a Debian base, then `pip install`) takes minutes.
   */
  readyTimeoutSecs: 600,
  /** Seconds a readiness check waits once the container started. */
  readinessTimeoutSecs: 60,
  /** Containers one list call returns. */
  listLimit: 100,
} as const;
