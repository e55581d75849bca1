import { create } from "@bufbuild/protobuf";
import { ExitStatusSchema, SandboxSpecSchema } from "@chalk/proto/sandbox/v1";
import { describe, expect, test } from "vitest";
import { exitFromWire, exitToWire, specFromWire, specToWire } from "./wire.js";

describe("wire conversions", () => {
  test("create options survive the wire", () => {
    const options = {
      image: "python:3.12-slim",
      command: ["sleep", "10"],
      env: { A: "1" },
      workdir: "/app",
      cpu: "500m",
      memory: "256Mi",
      pids: 64,
      disk: "2Gi",
      init: false,
      network: { ports: [8080] },
      labels: { app: "x" },
      id: "abc",
    };
    expect(specFromWire(create(SandboxSpecSchema, specToWire(options)))).toEqual(options);
    expect(specFromWire(create(SandboxSpecSchema, specToWire({ image: "r" })))).toEqual({ image: "r" });
  });

  test("no host path crosses the wire: the client refuses it, and so does the server", () => {
    const paths = [
      { rootfs: "/var/lib/chalk/images/.." },
      { rootfs: ["/layers/a", "/layers/b/hostetc"] },
      { mounts: [{ source: "/etc", target: "/hostetc" }] },
      { logPath: "/etc/passwd" },
      { writableLayerDir: "/tmp/upper" },
    ];
    for (const o of paths) {
      const key = Object.keys(o)[0];
      expect(() => specToWire({ image: "x", ...o }), key).toThrow(
        new RegExp(`\\[invalid_argument\\] ${key}: a Chalk server takes no host path`),
      );
    }
    const wire = [
      { rootfs: ["/images/chalk/layers/x", "/images/.."] },
      { mounts: [{ source: "/etc", target: "/hostetc", readOnly: false }] },
      { logPath: "/etc/shadow" },
    ];
    for (const w of wire) {
      expect(() => specFromWire(create(SandboxSpecSchema, { image: "x", ...w }))).toThrow(
        /spec\.\w+: a Chalk server takes no host path/,
      );
    }
    expect(() => specFromWire(create(SandboxSpecSchema, {}))).toThrow(/spec\.image: required/);
  });

  test("init: true is kept as said, and an absent init stays absent (the runtime's default, true)", () => {
    expect(specFromWire(create(SandboxSpecSchema, specToWire({ image: "r", init: true })))).toEqual({
      image: "r",
      init: true,
    });
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
