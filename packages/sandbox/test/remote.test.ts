import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SandboxService } from "@chalk/proto/sandbox/v1";
import { addService, createTransport, listen } from "@chalk/rpc";
import { connectSandboxes } from "../src/index.js";
import { LocalRuntime } from "../src/local/index.js";
import { sandboxServiceImpl } from "../src/server/index.js";
import { sandboxBehaviour } from "./behaviour.js";
import { execBehaviour } from "./exec-behaviour.js";

async function setup() {
  const stateDir = await mkdtemp(join(tmpdir(), "chalk-sbx-remote-"));
  const local = new LocalRuntime({ stateDir });
  const { server, address } = await listen({
    address: "127.0.0.1:0",
    register: (s) => addService(s, SandboxService, sandboxServiceImpl(local)),
  });
  const transport = createTransport({ address, environment: "behaviour" });
  return {
    runtime: connectSandboxes({ transport }),
    close: async () => {
      transport.close();
      server.forceShutdown();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

sandboxBehaviour("through gRPC", setup);
execBehaviour("through gRPC", setup);
