import { invalidArgument, parseCpu, parseMemory } from "@chalk/core";
import { DEFAULT_PIDS } from "@chalk/sandbox/local";

/** What one build step's sandbox may use. */
export interface StepLimits {
  /** Memory (`"4Gi"`): the step sees it as `MemTotal`; more is an OOM kill that fails the build. */
  memory: string;
  /** CPU (`"2"`, `"500m"`). */
  cpu: string;
  /** Processes inside the step's sandbox (its RLIMIT_NPROC). */
  pids: number;
}

/** The limits of a build step when the builder's options name none. */
export const DEFAULT_STEP_LIMITS: Readonly<StepLimits> = {
  memory: "4Gi",
  cpu: "2",
  pids: DEFAULT_PIDS,
};

/**
 * A builder's step limits from its options, checked before any work: `stepMemory` and `stepCpu` as
 * Kubernetes quantities, `stepPids` an integer from 8 to 65536; each left out takes
 * {@link DEFAULT_STEP_LIMITS}. Throws `invalid_argument` naming the option.
 */
export function stepLimits(o: { stepMemory?: string; stepCpu?: string; stepPids?: number }): StepLimits {
  const memory = o.stepMemory ?? DEFAULT_STEP_LIMITS.memory;
  const cpu = o.stepCpu ?? DEFAULT_STEP_LIMITS.cpu;
  const pids = o.stepPids ?? DEFAULT_STEP_LIMITS.pids;
  parseMemory(memory, "stepMemory");
  parseCpu(cpu, "stepCpu");
  if (!Number.isInteger(pids) || pids < 8 || pids > 65_536) {
    throw invalidArgument("stepPids", `${pids} is not a process count`, "an integer from 8 to 65536");
  }
  return { memory, cpu, pids };
}
