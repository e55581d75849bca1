/**
 * `@chalk/core`: what every Chalk package shares — the {@link ChalkError} class with gRPC-aligned
 * codes, and parsers for Kubernetes-style resource strings.
 *
 * @packageDocumentation
 */

export {
  ChalkError,
  type ChalkErrorOptions,
  Code,
  codeName,
  type ErrorDetails,
  type ErrorDetailValue,
  invalidArgument,
  notFound,
  quote,
} from "./errors.js";
export {
  CPU_FORMS,
  formatBytes,
  GPU_FORMS,
  type GpuRequest,
  MEMORY_FORMS,
  parseCpu,
  parseGpu,
  parseMemory,
} from "./resource-quantity.js";
export { parseInput } from "./validate.js";
