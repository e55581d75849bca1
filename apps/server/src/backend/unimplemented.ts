import { ChalkError, Code } from "@chalk/core";

/**
 * The typed refusal of an optional capability (pause and resume, snapshots, warm pools, a files
 * API, port forwarding, egress policy, detached exec sessions) by a backend that does not have it:
 * unimplemented, naming the capability, this backend, and the backends that have it.
 *
 * @example
 * ```ts
 * throw unimplemented("pause", "kubernetes", ["local"]);
 * // [unimplemented] pause is not available on the kubernetes backend; it is on: local
 * ```
 */
export function unimplemented(
  capability: string,
  backend: string,
  availableOn: readonly string[],
): ChalkError {
  const where = availableOn.length > 0 ? `; it is on: ${availableOn.join(", ")}` : "";
  return new ChalkError(
    Code.Unimplemented,
    `${capability} is not available on the ${backend} backend${where}`,
    {
      details: { capability, backend, availableOn: [...availableOn] },
    },
  );
}
