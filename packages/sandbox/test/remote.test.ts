import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { notFound } from "@chalk/core";
import { SandboxService } from "@chalk/proto/sandbox/v1";
import { addService, createTransport, listen } from "@chalk/rpc";
import { connectSandboxes } from "../src/index.js";
import { LocalRuntime } from "../src/local/index.js";
import { sandboxesFromImages, sandboxServiceImpl } from "../src/server/index.js";
import { sandboxBehaviour, testRootfs } from "./behaviour.js";
import { execBehaviour } from "./exec-behaviour.js";

async function setup() {
  const stateDir = await mkdtemp(join(tmpdir(), "chalk-sbx-remote-"));
  const rootfs = testRootfs();
  // The host resolves image references in its own store: here, one image served from the test rootfs.
  const sandboxes = sandboxesFromImages(new LocalRuntime({ stateDir }), async (image) => {
    if (image !== "minbase") throw notFound("image", image);
    return { rootfs: [rootfs], env: {}, workdir: undefined };
  });
  const server = await listen({
    address: "127.0.0.1:0",
    register: (s) => addService(s, SandboxService, sandboxServiceImpl(sandboxes)),
  });
  const { address } = server;
  const transport = createTransport({ address, environment: "behaviour" });
  return {
    runtime: connectSandboxes({ transport }),
    base: { image: "minbase" },
    missing: { image: "no-such-image" },
    close: async () => {
      transport.close();
      server.close();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

sandboxBehaviour("through gRPC", setup);
execBehaviour("through gRPC", setup);
