/**
 * Reads a secret value: from stdin when it is not a terminal (one trailing newline removed), else
 * from a hidden prompt on the terminal (nothing echoed). Never from argv.
 */

import { ChalkError, Code } from "@chalk/core";
import password from "@inquirer/password";
import { UsageError } from "./errors.js";

/** At most this many bytes are read from stdin (the store takes 64 KiB per value). */
const MAX_STDIN_BYTES = 1024 * 1024;

/** The value, read as described above. `what` names it in the prompt. */
export async function readSecret(what: string): Promise<string> {
  if (process.stdin.isTTY) {
    try {
      return await password({ message: `${what}:`, mask: false }, { output: process.stderr });
    } catch {
      throw new ChalkError(Code.Canceled, "canceled at the prompt");
    }
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).byteLength;
    if (size > MAX_STDIN_BYTES) throw new UsageError(`${what}: more than ${MAX_STDIN_BYTES} bytes on stdin`);
    chunks.push(chunk as Buffer);
  }
  const value = Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
  if (value === "")
    throw new UsageError(`${what}: stdin was empty (pipe the value in, or run in a terminal to be prompted)`);
  return value;
}
