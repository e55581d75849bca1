import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalRuntime } from "../src/local/index.js";
import { sandboxBehaviour, testRootfs } from "./behaviour.js";
import { execBehaviour } from "./exec-behaviour.js";

async function setup() {
  const stateDir = await mkdtemp(join(tmpdir(), "chalk-sbx-local-"));
  return {
    runtime: new LocalRuntime({ stateDir }),
    base: { rootfs: testRootfs() },
    missing: { rootfs: "/nonexistent/rootfs" },
    close: () => rm(stateDir, { recursive: true, force: true }),
  };
}

sandboxBehaviour("in-process", setup);
execBehaviour("in-process", setup);
