/**
 * `@chalk/container`: the product's Container.
 *
 * @packageDocumentation
 */

// For other libraries (the server): the validation the SDK and the server share.
export {
  CONTAINER_LIMITS,
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
  checkVolumes,
  ENV_NAME_PATTERN,
  type ParsedResources,
  type VolumeTuple,
} from "./validation.js";
