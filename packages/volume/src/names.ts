import { invalidArgument } from "@chalk/core";

/** The form of a volume name: lower-case letters, digits, `.`, `_` and `-`, at most 63 characters. */
export const VOLUME_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** What {@link VOLUME_NAME_PATTERN} accepts, in words, for error messages. */
export const VOLUME_NAME_FORM =
  "1-63 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit";

/** The form of an environment name; the same as a volume name. */
export const ENVIRONMENT_PATTERN = VOLUME_NAME_PATTERN;

/**
 * Returns `name` when it is a valid volume name, else throws invalid_argument naming `field`.
 *
 * @param field - the request field the name came from (`"name"`, `"volumeName"`).
 */
export function checkVolumeName(name: unknown, field = "name"): string {
  if (typeof name !== "string" || name === "")
    throw invalidArgument(field, "a volume name is required", VOLUME_NAME_FORM);
  if (!VOLUME_NAME_PATTERN.test(name)) {
    throw invalidArgument(
      field,
      `${JSON.stringify(name.slice(0, 80))} is not a valid volume name`,
      VOLUME_NAME_FORM,
    );
  }
  return name;
}

/** Returns `environment` when it is a valid environment name, else throws invalid_argument. */
export function checkEnvironment(environment: unknown): string {
  if (typeof environment !== "string" || !ENVIRONMENT_PATTERN.test(environment)) {
    throw invalidArgument(
      "environment",
      `${JSON.stringify(String(environment).slice(0, 80))} is not a valid environment name`,
      VOLUME_NAME_FORM,
    );
  }
  return environment;
}
