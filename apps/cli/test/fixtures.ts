/**
 * One real chalk-server per test file (the container tests' fixture: a temporary data dir, the
 * cached minbase root filesystem as the image `minbase`, everything stopped afterwards), a private
 * config dir, and `chalk(args)` running the built binary against that server.
 */
import { TEST_IMAGE, useServer } from "../../../packages/container/test/fixtures.ts";
import { type ChalkResult, type ChalkRunOptions, cliEnv, runChalk, useTempDir } from "./cli.js";

export { TEST_IMAGE };

/** The fixture of a CLI test file. */
export interface CliFixture {
  /** The server's address, token and data dir. */
  readonly server: ReturnType<typeof useServer>["server"];
  /** A directory private to the test file (the config file lives here). */
  readonly dir: string;
  /** Runs the built `chalk` with the server's address and token in its environment. */
  chalk(args: string[], options?: ChalkRunOptions): Promise<ChalkResult>;
  /** The environment `chalk` runs with. */
  env(): Record<string, string>;
}

/** Starts the server for the test file. */
export function useCli(serverArgs: string[] = []): CliFixture {
  const s = useServer(serverArgs);
  const tmp = useTempDir();
  return {
    get server() {
      return s.server;
    },
    get dir() {
      return tmp.dir;
    },
    env: () => cliEnv(s.server, tmp.dir),
    chalk: (args, options) => runChalk(args, cliEnv(s.server, tmp.dir), options),
  };
}

/** A fresh name for a container, volume or secret of one test. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
}

/** stderr holds exactly one line, `chalk: [code] …`, and it names `code`. */
export function oneErrorLine(stderr: string, code: string): boolean {
  const lines = stderr.trimEnd().split("\n");
  return lines.length === 1 && lines[0]!.startsWith(`chalk: [${code}] `);
}
