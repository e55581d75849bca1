import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { ContainerSpecSchema } from "@chalk/proto/container/v1";
import { FileKind, ImageSpecSchema } from "@chalk/proto/image/v1";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { fieldOf } from "../test/field-of.js";
import { type ContainerSpec, containerSpecFromWire, containerSpecToWire } from "./container-spec.js";
import {
  CONTAINER_STATUSES,
  RUN_PHASES,
  runPhaseFromWire,
  runPhaseToWire,
  statusFromWire,
  statusToWire,
} from "./status.js";

type Wire = MessageInitShape<typeof ContainerSpecSchema>;
const ok: Wire = { name: "web", image: { source: { case: "uri", value: "python:3.12-slim" } } };
const wire = (over: Partial<Wire>) => create(ContainerSpecSchema, { ...ok, ...over } as Wire);

describe("containerSpecFromWire", () => {
  test("a minimal spec decodes with everything optional left out", () => {
    expect(containerSpecFromWire(wire({}))).toMatchObject({
      name: "web",
      image: { kind: "uri", uri: "python:3.12-slim" },
      cpu: undefined,
      memory: undefined,
      port: undefined,
      entrypoint: [],
      upload: undefined,
      readiness: undefined,
    });
  });

  test("bad input is refused before any work, naming the wire field", () => {
    const cases: [Partial<Wire>, string][] = [
      [{ name: "Bad_Name" }, "spec.name"],
      [{ image: {} }, "spec.image"],
      [{ image: { source: { case: "uri", value: "ïmage" } } }, "spec.image.uri"],
      [{ image: { source: { case: "uri", value: "../../etc" } } }, "spec.image.uri"],
      [{ image: { source: { case: "uri", value: "a b" } } }, "spec.image.uri"],
      [{ image: { source: { case: "spec", value: new Uint8Array() } } }, "spec.image.spec"],
      [{ image: { source: { case: "spec", value: new Uint8Array([0xff, 0xff]) } } }, "spec.image.spec"],
      [{ cpu: "lots" }, "spec.cpu"],
      [{ cpu: " 1" }, "spec.cpu"],
      [{ memory: " 1Gi" }, "spec.memory"],
      [{ memory: "1Gi\n" }, "spec.memory"],
      [{ gpu: "nvidia-l4:1 " }, "spec.gpu"],
      [
        {
          image: {
            source: {
              case: "spec",
              value: toBinary(
                ImageSpecSchema,
                create(ImageSpecSchema, {
                  base: { source: { case: "debianSlim", value: { pythonVersion: "3.11" } } },
                  steps: [
                    {
                      kind: {
                        case: "addFiles",
                        value: {
                          files: [
                            {
                              path: "/app/x",
                              kind: FileKind.REGULAR,
                              mode: 0o644,
                              sha256: "a".repeat(64),
                              sizeBytes: 6n,
                            },
                          ],
                        },
                      },
                    },
                  ],
                }),
              ),
            },
          },
        },
        "spec.image.spec.steps[0].add_files.files[0].content",
      ],
      [{ env: { "1X": "a" } }, "spec.env.1X"],
      [{ secrets: [{}] }, "spec.secrets[0]"],
      [{ secrets: [{ source: { case: "secret", value: { name: "bad-name" } } }] }, "spec.secrets[0].name"],
      [{ volumes: [{ name: "v", mountPath: "/proc" }] }, "spec.volumes[0].mount_path"],
      [
        {
          volumes: [
            { name: "a", mountPath: "/d" },
            { name: "b", mountPath: "/d" },
          ],
        },
        "spec.volumes[1].mount_path",
      ],
      [
        { upload: { volumeName: "u", targets: [{ source: "../x", target: "/b" }] } },
        "spec.upload.targets[0].source",
      ],
      [
        { upload: { volumeName: "u", targets: [{ source: "x", target: "b" }] } },
        "spec.upload.targets[0].target",
      ],
      [{ port: 70000 }, "spec.port"],
      [{ entrypoint: [""] }, "spec.entrypoint[0]"],
      [{ readiness: { check: { case: "port", value: 8080 } } }, "spec.readiness.port"],
      [{ port: 80, readiness: {} }, "spec.readiness"],
      [{ readiness: { check: { case: "logLine", value: "a\nb" } } }, "spec.readiness.logLine"],
      [
        { readiness: { check: { case: "logLine", value: "up" }, timeoutSecs: -1 } },
        "spec.readiness.timeoutSecs",
      ],
    ];
    for (const [over, field] of cases) {
      expect(
        fieldOf(() => containerSpecFromWire(wire(over))),
        JSON.stringify(over),
      ).toBe(field);
    }
  });

  test("a resource quantity with whitespace anywhere in it is refused naming its wire field", () => {
    const valid = fc.constantFrom(
      ["cpu", "500m"],
      ["cpu", "2"],
      ["cpu", "0.5"],
      ["memory", "1Gi"],
      ["memory", "536870912"],
      ["gpu", "nvidia-l4:1"],
      ["gpu", "2"],
    );
    const space = fc.constantFrom(" ", "\t", "\n", "\r", "\v", "\f", "\u00a0", "\u2003", "\u2028", "\ufeff");
    fc.assert(
      fc.property(
        valid,
        fc.array(space, { minLength: 1, maxLength: 3 }),
        fc.nat(),
        ([field, value], ws, at) => {
          const i = at % (value.length + 1);
          const spaced = value.slice(0, i) + ws.join("") + value.slice(i);
          expect(containerSpecFromWire(wire({ [field]: value }))[field as "cpu"]).toBe(value);
          expect(fieldOf(() => containerSpecFromWire(wire({ [field]: spaced })))).toBe(`spec.${field}`);
        },
      ),
      { numRuns: 300 },
    );
  });

  test("readiness by port names the container's port; by log line, a line of text", () => {
    expect(
      containerSpecFromWire(wire({ port: 8080, readiness: { check: { case: "port", value: 8080 } } }))
        .readiness,
    ).toEqual({ kind: "port", port: 8080, timeoutSecs: 60 });
    expect(
      containerSpecFromWire(
        wire({ readiness: { check: { case: "logLine", value: "ready" }, timeoutSecs: 5 } }),
      ).readiness,
    ).toEqual({ kind: "logLine", logLine: "ready", timeoutSecs: 5 });
  });
});

const nameArb = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?$/);
const envNameArb = fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,10}$/);
const mountArb = fc
  .stringMatching(/^\/[a-z]{1,8}(\/[a-z]{1,8}){0,2}$/)
  .filter((p) => !/^\/(proc|sys|dev)(\/|$)/.test(p));

const specArb: fc.Arbitrary<ContainerSpec> = fc
  .record({
    name: nameArb,
    uri: fc.constantFrom("python:3.12-slim", "127.0.0.1:5000/team/app:v1", "minbase"),
    cpuMillis: fc.option(fc.integer({ min: 1, max: 64_000 }), { nil: undefined }),
    env: fc.dictionary(
      envNameArb,
      fc.string({ maxLength: 20 }).filter((s) => !s.includes("\0")),
      { maxKeys: 5 },
    ),
    secrets: fc.array(
      fc.oneof(
        envNameArb.map((name) => ({ kind: "secret" as const, name })),
        fc.record({
          kind: fc.constant("integration" as const),
          name: envNameArb,
          keys: fc.array(envNameArb, { maxLength: 3 }),
        }),
        fc.record({
          kind: fc.constant("localEnv" as const),
          name: envNameArb,
          value: fc.string({ maxLength: 20 }),
        }),
      ),
      { maxLength: 4 },
    ),
    mounts: fc.uniqueArray(mountArb, { maxLength: 6 }),
    port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
    entrypoint: fc.array(
      fc.string({ minLength: 1, maxLength: 10 }).filter((s) => !s.includes("\0")),
      { maxLength: 4 },
    ),
    readinessLine: fc.option(fc.stringMatching(/^[a-z ]{1,20}$/), { nil: undefined }),
  })
  .map((r) => {
    const [volumeMounts, uploadMounts] = [
      r.mounts.filter((_, i) => i % 2 === 0),
      r.mounts.filter((_, i) => i % 2 === 1),
    ];
    return {
      name: r.name,
      image: { kind: "uri", uri: r.uri },
      cpu: r.cpuMillis === undefined ? undefined : `${r.cpuMillis}m`,
      memory: undefined,
      gpu: undefined,
      resources: { cpuMillis: r.cpuMillis, memoryBytes: undefined, gpu: undefined },
      env: r.env,
      secrets: r.secrets,
      volumes: volumeMounts.map((mountPath, i) => ({ name: `vol-${i}`, mountPath, readOnly: i % 2 === 0 })),
      port: r.port,
      entrypoint: r.entrypoint[0] === undefined ? [] : r.entrypoint,
      upload:
        uploadMounts.length === 0
          ? undefined
          : {
              volumeName: "chalk-upload-x",
              targets: uploadMounts.map((target) => ({ source: `tree${target}`, target })),
            },
      readiness:
        r.readinessLine === undefined
          ? undefined
          : { kind: "logLine", logLine: r.readinessLine, timeoutSecs: 60 },
    } satisfies ContainerSpec;
  });

describe("the wire form", () => {
  test("every valid spec survives toWire → binary → fromWire unchanged", () => {
    fc.assert(
      fc.property(specArb, (spec) => {
        const bytes = toBinary(ContainerSpecSchema, create(ContainerSpecSchema, containerSpecToWire(spec)));
        expect(containerSpecFromWire(fromBinary(ContainerSpecSchema, bytes))).toEqual(spec);
      }),
      { numRuns: 300 },
    );
  });

  test("statuses and run phases map to the wire and back", () => {
    for (const s of CONTAINER_STATUSES) expect(statusFromWire(statusToWire(s))).toBe(s);
    for (const p of RUN_PHASES) expect(runPhaseFromWire(runPhaseToWire(p))).toBe(p);
    expect(runPhaseFromWire(runPhaseToWire(undefined))).toBeUndefined();
  });
});
