import { create } from "@bufbuild/protobuf";
import { ExitStatusSchema, SandboxSpecSchema } from "@chalk/proto/sandbox/v1";
import { describe, expect, test } from "vitest";
import { exitFromWire, exitToWire, specFromWire, specToWire } from "./wire.js";

describe("wire conversions", () => {
  test("create options survive the wire", () => {
    const options = {
      rootfs: ["/layers/base", "/layers/top"],
      command: ["sleep", "10"],
      env: { A: "1" },
      workdir: "/app",
      cpu: "500m",
      memory: "256Mi",
      pids: 64,
      disk: "2Gi",
      init: false,
      network: { ports: [8080] },
      mounts: [{ source: "/srv/vol", target: "/data", readOnly: true }],
      labels: { app: "x" },
      logPath: "/tmp/log",
      id: "abc",
    };
    expect(specFromWire(create(SandboxSpecSchema, specToWire(options)))).toEqual(options);
  });

  test("init: true is kept as said, and an absent init stays absent (the runtime's default, true)", () => {
    expect(specFromWire(create(SandboxSpecSchema, specToWire({ rootfs: "/r", init: true })))).toEqual({
      rootfs: "/r",
      init: true,
    });
  });

  test("a single rootfs directory stays a string, and absent options stay absent", () => {
    expect(specFromWire(create(SandboxSpecSchema, specToWire({ rootfs: "/r" })))).toEqual({ rootfs: "/r" });
  });

  test("exit code 0 is kept apart from a signal death", () => {
    expect(
      exitFromWire(
        create(
          ExitStatusSchema,
          exitToWire({ exitCode: 0, signal: null, timedOut: false, oomKilled: false }),
        ),
      ),
    ).toEqual({
      exitCode: 0,
      signal: null,
      timedOut: false,
      oomKilled: false,
    });
    expect(
      exitFromWire(
        create(
          ExitStatusSchema,
          exitToWire({ exitCode: null, signal: "SIGKILL", timedOut: true, oomKilled: false }),
        ),
      ),
    ).toEqual({
      exitCode: null,
      signal: "SIGKILL",
      timedOut: true,
      oomKilled: false,
    });
  });
});
