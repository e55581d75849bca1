import { ChalkError, Code } from "@chalk/core";

/** Thrown for a bad configuration; `main` prints it and exits with status 2. */
export class ConfigError extends ChalkError {
  constructor(message: string) {
    super(Code.InvalidArgument, message);
    this.name = "ConfigError";
  }
}
