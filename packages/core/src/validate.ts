import type { z } from "zod";
import { ChalkError, Code } from "./errors.js";

/**
 * Validates `value` with a zod schema and returns the typed result, or throws one
 * invalid-argument {@link ChalkError} that names every offending field (`resources.memory: …`).
 * This is the one place zod issues are translated.
 *
 * @param what - what is being validated, prefixed to field paths (`"sandbox"` → `sandbox.cpu`).
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what?: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = [what, ...issue.path.map(String)].filter((p) => p !== undefined && p !== "").join(".");
    return `${path || "request"}: ${issue.message}`;
  });
  const first = result.error.issues[0];
  const field = first ? [what, ...first.path.map(String)].filter(Boolean).join(".") : what;
  return throwInvalid(problems.join("; "), field);
}

function throwInvalid(message: string, field: string | undefined): never {
  throw new ChalkError(Code.InvalidArgument, message, field === undefined ? {} : { field });
}
