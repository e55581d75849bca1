import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalRuntime } from "../src/local/index.js";
import { sandboxBehaviour, testRootfs } from "./behaviour.js";

sandboxBehaviour("in-process", async () => {
  const stateDir = await mkdtemp(join(tmpdir(), "chalk-sbx-local-"));
  return {
    runtime: new LocalRuntime({ stateDir }),
    base: { rootfs: testRootfs() },
    missing: { rootfs: "/nonexistent/rootfs" },
    close: () => rm(stateDir, { recursive: true, force: true }),
  };
});
