/** The real server process for these tests (`@chalk/server/testing`). */
export { namespaceOf, removeDataDir, type ServerProcess, startServerProcess } from "@chalk/server/testing";
