/**
 * `@chalk/container`: the product's Container — an image run as a gVisor sandbox with resources,
 * environment, secrets, volumes, a port and an entrypoint, through the Chalk server. `Image`,
 * `Volume` and `Secret` are re-exported so one import serves every example.
 *
 * The server comes from `CHALK_API_SERVER` (host:port), the token from `CHALK_TOKEN`, the environment
 * from `CHALK_ENVIRONMENT`; options passed to `new Container`, `fromName` or `fromId` override them.
 *
 * @example
 * ```ts
 * import { Container, Image } from "@chalk/container";
 *
 * const c = await new Container({
 *   image: Image.debianSlim("3.11").pipInstall(["requests"]),
 *   name: "hello-container",
 *   cpu: "1",
 *   memory: "2Gi",
 * }).run();
 * const result = await c.exec("python", "-c", "import requests; print(requests.__version__)");
 * console.log(result.stdoutText);
 * console.log(`exit code: ${result.exitCode}`);
 * await c.stop();
 * ```
 *
 * @packageDocumentation
 */

// For SDK users.
export { ChalkError, Code } from "@chalk/core";
export { Image } from "@chalk/image";
export type {
  Process,
  ProcessExit,
  Sandbox,
  SandboxInfo,
  SpawnOptions,
} from "@chalk/sandbox";
export { Integrations, Secret, Secrets } from "@chalk/secrets";
export {
  CONTAINER_LIMITS,
  type ContainerStatus,
  type EndReason,
  type RunPhase,
  type VolumeTuple,
} from "@chalk/spec";
export { Volume, type VolumeUploadProgress } from "@chalk/volume";
export { Container } from "./container.js";
export {
  ContainerFs,
  type FileData,
  type FileEvent,
  type FileInfo,
  type FileKind,
  type FileWatch,
} from "./container-fs.js";
export type {
  ContainerBuildLog,
  ContainerConnectOptions,
  ContainerCreateOptions,
  ContainerExecOptions,
  ContainerExecResult,
  ContainerInfo,
  ContainerLogsOptions,
  ContainerReadiness,
  ContainerRunOptions,
  ContainerStopOptions,
} from "./container-options.js";
export {
  type ContainerListOptions,
  type ContainerRecord,
  type ContainerSecretRef,
  type ContainerVolumeMount,
  describeContainer,
  listContainers,
} from "./container-record.js";
export type { ContainerImage } from "./image-source.js";
export { PortForward, type PortForwardOptions } from "./port-forward.js";
