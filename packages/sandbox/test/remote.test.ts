import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChalkError, Code, notFound } from "@chalk/core";
import { SandboxService } from "@chalk/proto/sandbox/v1";
import { addService, createClient, createTransport, listen } from "@chalk/rpc";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { connectSandboxes, type Sandbox } from "../src/index.js";
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

describe("a client that goes away while output flows (through gRPC)", () => {
  // The CLI's `chalk exec … | head -c1` closes the call while the process still writes: the server
  // must kill the process and end its own stream readers without an unhandled rejection (a server
  // bug that ends chalk-server), for every kind of output and every moment of the cancel.
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  let stateDir: string;
  let server: Awaited<ReturnType<typeof listen>>;
  let transport: ReturnType<typeof createTransport>;
  let sandbox: Sandbox;

  beforeAll(async () => {
    process.on("unhandledRejection", onRejection);
    stateDir = await mkdtemp(join(tmpdir(), "chalk-sbx-cancel-"));
    const rootfs = testRootfs();
    const sandboxes = sandboxesFromImages(new LocalRuntime({ stateDir }), async () => ({
      rootfs: [rootfs],
      env: {},
      workdir: undefined,
    }));
    server = await listen({
      address: "127.0.0.1:0",
      register: (s) => addService(s, SandboxService, sandboxServiceImpl(sandboxes)),
    });
    transport = createTransport({ address: server.address, environment: "cancel" });
    sandbox = await connectSandboxes({ transport }).create({ image: "minbase", memory: "256Mi" });
  });

  afterAll(async () => {
    await sandbox?.stop({ gracePeriodSeconds: 0 }).catch(() => undefined);
    transport?.close();
    server?.close();
    await rm(stateDir, { recursive: true, force: true });
    process.off("unhandledRejection", onRejection);
  });

  // Fast writers keep the server's forwarders waiting on the client; slow ones keep them waiting
  // on the process's streams, which the server ends under them when the client goes away.
  const writers = {
    "stdout without end": ["sh", "-c", "exec yes"],
    "stderr without end": ["sh", "-c", "exec yes >&2"],
    "both streams": ["sh", "-c", "yes & yes >&2"],
    "a line at a time": ["sh", "-c", "while :; do echo yes; sleep 0.05; done"],
    "a line at a time on stderr": ["sh", "-c", "while :; do echo yes >&2; sleep 0.05; done"],
    "a PTY": ["sh", "-c", "exec yes"],
    "a PTY, a line at a time": ["sh", "-c", "while :; do echo yes; sleep 0.05; done"],
  } as const;

  test.each(Object.entries(writers))(
    "%s: the process is killed and nothing is left unhandled",
    async (kind, argv) => {
      rejections.length = 0;
      const client = createClient(SandboxService, transport);
      for (const messages of [0, 1, 5]) {
        const ac = new AbortController();
        async function* requests() {
          yield {
            message: {
              case: "start" as const,
              value: {
                sandboxId: sandbox.id,
                argv: [...argv],
                ...(kind.startsWith("a PTY") ? { pty: { cols: 80, rows: 24 } } : {}),
              },
            },
          };
          await new Promise((resolve) => ac.signal.addEventListener("abort", resolve));
        }
        let seen = 0;
        const err = await (async () => {
          for await (const r of client.exec(requests(), { signal: ac.signal })) {
            if (r.event.case === "output" && ++seen > messages) ac.abort();
          }
        })().catch((e: unknown) => e);
        expect(ChalkError.from(err).code).toBe(Code.Canceled);
        // The server kills the process once it sees the cancel: no `yes` stays in the sandbox.
        await expect
          .poll(
            async () =>
              (
                await sandbox.exec(
                  "sh",
                  "-c",
                  'for p in /proc/[0-9]*; do tr "\\0" " " < "$p/cmdline"; echo; done',
                )
              ).stdoutText,
            {
              timeout: 10_000,
            },
          )
          .not.toMatch(/yes/);
      }
      // Unhandled rejections are reported after the current turn: give them that turn.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(rejections.map((r) => String(r))).toEqual([]);
    },
  );
});
