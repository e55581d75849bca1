/**
 * `@chalk/spec`: the container spec that the SDK (`@chalk/container`) sends and the server runs,
 * defined once for both: its vocabulary ({@link ContainerStatus}, {@link RunPhase}, secret sources),
 * its limits ({@link CONTAINER_LIMITS}), its validation (every check names the field and the
 * accepted forms) and its wire form (`chalk.container.v1.ContainerSpec`).
 *
 * It sits between the layers it composes (`@chalk/core`, `@chalk/image`, `@chalk/sandbox`,
 * `@chalk/secrets`, `@chalk/volume`) and the two that use it, so neither the server depends on the
 * SDK nor the SDK on the server.
 *
 * @example
 * ```ts
 * import { containerSpecFromWire } from "@chalk/spec";
 *
 * const spec = containerSpecFromWire(request.spec); // invalid_argument naming the field, or a valid spec
 * ```
 *
 * @packageDocumentation
 */

export {
  CONTAINER_NAME_FORM,
  CONTAINER_NAME_PATTERN,
  checkCommand,
  checkContainerId,
  checkContainerName,
  checkEnv,
  checkEnvName,
  checkMountPath,
  checkPort,
  checkResources,
  checkSeconds,
  checkTailLines,
  checkVolumes,
  ENV_NAME_PATTERN,
  type ParsedResources,
  type VolumeTuple,
} from "./checks.js";
export {
  type ContainerSpec,
  checkImageReference,
  checkImageSource,
  checkReadiness,
  checkSecretSources,
  containerSpecFromWire,
  containerSpecToWire,
  type ImageSource,
  type ReadinessSpec,
  readinessToWire,
  type SecretRef,
  type SecretSourceSpec,
  secretRefOf,
  type UploadSpec,
  type VolumeMountSpec,
} from "./container-spec.js";
export { CONTAINER_DEFAULTS, CONTAINER_LIMITS } from "./limits.js";
export {
  ACTIVE_STATUSES,
  CONTAINER_STATUSES,
  type ContainerStatus,
  type EndReason,
  isActive,
  RUN_PHASES,
  type RunPhase,
  runPhaseFromWire,
  runPhaseToWire,
  statusFromWire,
  statusToWire,
} from "./status.js";
