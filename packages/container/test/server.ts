/**
 * The real server process for these tests. `@chalk/server` depends on this package (for the input
 * validation both share), so the helper is imported by path instead of as a dependency.
 */
export {
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from "../../../apps/server/src/server-process.ts";
