/**
 * The container service's logic against the in-memory backend (a test double): the run's phases,
 * a stop in every phase, deadlines, readiness, honest statuses, name reservation, reconciliation.
 * The same behaviour on real runsc is in `packages/container/test/`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ChalkError, Code } from "@chalk/core";
import { type ContainerSpec, RUN_PHASES, type RunPhase } from "@chalk/spec";
import pino from "pino";
import { afterEach, describe, expect, test } from "vitest";
import { type FakeContainer, Gate, InMemoryBackend } from "../backend/in-memory-backend.js";
import { defaultExecSlotLimits, ExecSlots } from "../exec-slots.js";
import { ServerMetrics } from "../metrics.js";
import { Containers } from "./containers.js";
import { reconcile } from "./reconcile.js";
import type { RunEvent } from "./run-events.js";

const ENV = "default";
const opened: Containers[] = [];

function setup(settleMs = 20, defaultDiskBytes?: number) {
  const backend = new InMemoryBackend();
  const containers = new Containers({
    backend,
    defaults: () => ({ cpu: "1", memory: "1Gi" }),
    ...(defaultDiskBytes === undefined ? {} : { defaultDiskBytes }),
    execSlots: new ExecSlots(defaultExecSlotLimits(4)),
    metrics: new ServerMetrics(() => backend.records.countByStatus()),
    log: pino({ level: "silent" }),
    settleMs,
  });
  opened.push(containers);
  return { backend, containers };
}

afterEach(async () => {
  for (const c of opened.splice(0)) {
    c.close();
    await c.backend.close();
  }
});

let n = 0;
function spec(over: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    name: `c-${++n}`,
    image: { kind: "uri", uri: "base" },
    cpu: undefined,
    memory: undefined,
    gpu: undefined,
    resources: { cpuMillis: undefined, memoryBytes: undefined, gpu: undefined },
    env: { A: "1" },
    secrets: [{ kind: "localEnv", name: "TOKEN", value: "local-value" }],
    volumes: [],
    port: undefined,
    entrypoint: [],
    upload: { volumeName: `chalk-upload-${n}`, targets: [{ source: "tree/app", target: "/app" }] },
    readiness: undefined,
    ...over,
  };
}

/** Reads a run to its end; the events. */
async function drain(events: AsyncIterable<RunEvent>): Promise<RunEvent[]> {
  const out: RunEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

const last = (events: RunEvent[]) => {
  const e = events.at(-1);
  if (e?.kind !== "container") throw new Error("the run ended without a container");
  return e.container;
};

async function until(what: () => boolean | Promise<boolean>, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await sleep(2);
  }
}

describe("a run", () => {
  test("goes upload → build → create → readiness → Running, with the build's output", async () => {
    const { backend, containers } = setup();
    const s = spec();
    const accepted = await containers.accept(ENV, s, 60, "create");
    expect(accepted).toMatchObject({ status: "Pending", phase: "upload" });
    expect(backend.volumeNames.has(`${ENV}/${s.upload?.volumeName}`)).toBe(true);
    const events = await drain(containers.start(ENV, { id: accepted.id }));
    expect(events[0]).toMatchObject({ kind: "build_log", log: { text: "building base\n" } });
    expect(last(events)).toMatchObject({
      status: "Running",
      phase: undefined,
      sandboxId: `fake-${accepted.id}`,
    });
    const launch = backend.containers.get(accepted.id)?.launch;
    expect(launch).toMatchObject({
      env: { FROM_IMAGE: "1", A: "1" },
      secrets: [{ kind: "localEnv", name: "TOKEN" }],
      mounts: [{ volume: s.upload?.volumeName, subPath: ["tree", "app"], target: "/app", readOnly: true }],
      resources: { cpuMillis: 1000, memoryBytes: 2 ** 30 },
    });
    expect(JSON.stringify(launch)).not.toContain("local-value");
  });

  test("the server's disk limit (--default-disk) reaches the backend with the launch; without one, none", async () => {
    for (const diskBytes of [10 * 2 ** 30, undefined]) {
      const { backend, containers } = setup(20, diskBytes);
      const accepted = await containers.accept(ENV, spec(), 60, "create");
      expect(last(await drain(containers.start(ENV, { id: accepted.id })))).toMatchObject({
        status: "Running",
      });
      expect(backend.containers.get(accepted.id)?.launch.resources.diskBytes).toBe(diskBytes);
    }
  });

  test("a second start joins the run, and a start after it returns the record at once", async () => {
    const { backend, containers } = setup();
    const gate = backend.holdBuild("base");
    const { id } = await containers.accept(ENV, spec(), 60, "create");
    const a = drain(containers.start(ENV, { id }));
    await until(() => backend.buildsStarted === 1);
    const b = drain(containers.start(ENV, { id }));
    gate.open();
    expect(last(await a).status).toBe("Running");
    expect(last(await b).status).toBe("Running");
    expect(backend.buildsStarted).toBe(1);
    expect(await drain(containers.start(ENV, { id }))).toMatchObject([
      { kind: "container", container: { status: "Running" } },
    ]);
  });

  test("of two runs of one name, exactly one is accepted", async () => {
    const { containers } = setup();
    const s = spec({ upload: undefined });
    const results = await Promise.allSettled(
      [0, 1, 2, 3].map(() => containers.accept(ENV, { ...s }, 60, "create")),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results.filter((r) => r.status === "rejected")) {
      expect(ChalkError.from((r as PromiseRejectedResult).reason).code).toBe(Code.AlreadyExists);
    }
  });

  test("a secret that does not resolve refuses the run before anything is kept", async () => {
    const { backend, containers } = setup();
    const s = spec({ secrets: [{ kind: "secret", name: "MISSING" }] });
    await expect(containers.accept(ENV, s, 60, "create")).rejects.toMatchObject({ code: Code.NotFound });
    expect(await backend.records.find(ENV, { name: s.name })).toBeUndefined();
    expect(backend.temporarySecrets.size).toBe(0);
    expect(backend.volumeNames.size).toBe(0);
  });

  test("a failed build ends the container Failed in phase build and removes what it owned", async () => {
    const { backend, containers } = setup();
    backend.buildError = new ChalkError(Code.FailedPrecondition, "image build failed at step 1: exit 7");
    const { id } = await containers.accept(ENV, spec(), 60, "create");
    const end = last(await drain(containers.start(ENV, { id })));
    expect(end).toMatchObject({
      status: "Failed",
      phase: "build",
      statusMessage: "image: image build failed at step 1: exit 7",
    });
    expect(end.cleanedUp).toBe(true);
    expect(backend.volumeNames.size).toBe(0);
    expect(backend.temporarySecrets.size).toBe(0);
  });
});

/** Holds a run in `phase` (returns what releases it), with the container's start stream. */
async function runHeldIn(phase: RunPhase | "running") {
  const { backend, containers } = setup();
  const s = spec(
    phase === "readiness"
      ? { entrypoint: ["app"], readiness: { kind: "logLine", logLine: "ready", timeoutSecs: 30 } }
      : {},
  );
  const build = phase === "build" ? backend.holdBuild("base") : undefined;
  if (phase === "create") backend.createGate = new Gate();
  const { id } = await containers.accept(ENV, s, 60, "create");
  const run = phase === "upload" ? undefined : drain(containers.start(ENV, { id }));
  if (phase === "build") await until(() => backend.buildsStarted === 1);
  if (phase === "create") await until(async () => (await backend.records.get(id))?.phase === "create");
  if (phase === "readiness") await until(async () => (await backend.records.get(id))?.phase === "readiness");
  if (phase === "running") await run;
  const release = () => {
    build?.open();
    backend.createGate?.open();
  };
  return { backend, containers, s, id, run, release };
}

describe("a stop wins in every phase", () => {
  for (const phase of [...RUN_PHASES, "running"] as const) {
    test(`stopped while ${phase}: Stopped, nothing left running, upload volume and local secrets gone`, async () => {
      const { backend, containers, s, id, run, release } = await runHeldIn(phase);
      const stopping = containers.stop(ENV, { id }, 0);
      release();
      const stopped = await stopping;
      expect(stopped).toMatchObject({
        status: "Stopped",
        phase: phase === "running" ? undefined : phase,
        cleanedUp: true,
      });
      if (run && phase !== "running") expect(last(await run)).toMatchObject({ status: "Stopped" });
      // Nothing it started keeps running, also what a creation in progress made after the stop.
      await sleep(10);
      expect([...backend.containers.keys()]).toEqual([]);
      for (const c of backend.created.values()) expect(c.running).toBe(false);
      expect(backend.volumeNames.has(`${ENV}/${s.upload?.volumeName}`)).toBe(false);
      expect(backend.temporarySecrets.size).toBe(0);
      expect(await containers.find(ENV, { id })).toMatchObject({ status: "Stopped" });
      // A late start changes nothing.
      expect(last(await drain(containers.start(ENV, { id })))).toMatchObject({ status: "Stopped" });
    });
  }

  test("one container stopping does not cancel a build another one shares", async () => {
    const { backend, containers } = setup();
    const gate = backend.holdBuild("base");
    const a = await containers.accept(ENV, spec({ upload: undefined }), 60, "create");
    const b = await containers.accept(ENV, spec({ upload: undefined }), 60, "create");
    const runA = drain(containers.start(ENV, { id: a.id }));
    const runB = drain(containers.start(ENV, { id: b.id }));
    await until(() => backend.buildsStarted === 2);
    await containers.stop(ENV, { id: a.id }, 0);
    expect(last(await runA).status).toBe("Stopped");
    gate.open();
    expect(last(await runB).status).toBe("Running");
  });
});

describe("the run deadline", () => {
  for (const phase of RUN_PHASES) {
    test(`a run still ${phase} when readyTimeoutSecs passes fails in that phase and leaves nothing`, async () => {
      const { backend, containers } = setup();
      const s = spec(
        phase === "readiness" ? { readiness: { kind: "logLine", logLine: "never", timeoutSecs: 60 } } : {},
      );
      if (phase === "build") backend.holdBuild("base");
      if (phase === "create") backend.createGate = new Gate();
      const { id } = await containers.accept(ENV, s, 0.05, "create");
      const run = phase === "upload" ? undefined : drain(containers.start(ENV, { id }));
      await until(async () => (await backend.records.get(id))?.status === "Failed");
      // A creation in progress is not interrupted; what it made is stopped when it returns.
      backend.createGate?.open();
      const end = run && last(await run);
      await until(async () => (await backend.records.get(id))?.cleanedUp === true);
      const record = await containers.find(ENV, { id });
      expect(record).toMatchObject({ status: "Failed", phase });
      expect(record.statusMessage).toMatch(/not Running within 0.05s \(readyTimeoutSecs\)/);
      if (end) expect(end.status).toBe("Failed");
      await until(() => backend.containers.size === 0);
      expect(backend.volumeNames.size).toBe(0);
    });
  }
});

describe("statuses are true", () => {
  test("an entrypoint that ends at once makes the run end with its outcome, not Running", async () => {
    const { backend, containers } = setup(200);
    backend.createGate = undefined;
    const { id } = await containers.accept(
      ENV,
      spec({ entrypoint: ["false"], upload: undefined }),
      60,
      "create",
    );
    const run = drain(containers.start(ENV, { id }));
    await until(() => backend.containers.has(id));
    (backend.containers.get(id) as FakeContainer).exit({ exitCode: 3 });
    expect(last(await run)).toMatchObject({
      status: "Failed",
      exitCode: 3,
      statusMessage: "the entrypoint exited with code 3",
    });
  });

  test("readiness by port: Running once the port accepts; Failed in phase readiness when it never does", async () => {
    const { backend, containers } = setup();
    const ready = await containers.accept(
      ENV,
      spec({ port: 8080, upload: undefined, readiness: { kind: "port", port: 8080, timeoutSecs: 5 } }),
      60,
      "create",
    );
    const run = drain(containers.start(ENV, { id: ready.id }));
    await until(() => backend.containers.has(ready.id));
    expect((await backend.records.get(ready.id))?.status).toBe("Pending");
    backend.containers.get(ready.id)?.openPorts.add(8080);
    expect(last(await run)).toMatchObject({ status: "Running", address: "10.0.0.1:8080" });

    const never = await containers.accept(
      ENV,
      spec({ port: 8080, upload: undefined, readiness: { kind: "port", port: 8080, timeoutSecs: 0.1 } }),
      60,
      "create",
    );
    const end = last(await drain(containers.start(ENV, { id: never.id })));
    expect(end).toMatchObject({ status: "Failed", phase: "readiness" });
    expect(end.statusMessage).toMatch(/not ready within 0.1s: port 8080 did not accept a connection/);
    expect(backend.containers.has(never.id)).toBe(false);
  });

  test("readiness by log line waits for a line of the output", async () => {
    const { backend, containers } = setup();
    const { id } = await containers.accept(
      ENV,
      spec({
        entrypoint: ["app"],
        upload: undefined,
        readiness: { kind: "logLine", logLine: "listening on", timeoutSecs: 5 },
      }),
      60,
      "create",
    );
    const run = drain(containers.start(ENV, { id }));
    await until(() => backend.containers.has(id));
    backend.writeLog(id, "starting\nlisten");
    await sleep(30);
    expect((await backend.records.get(id))?.status).toBe("Pending");
    backend.writeLog(id, "ing on :8080\n");
    expect(last(await run).status).toBe("Running");
  });

  test("an exec killed for memory in an idle container: the container's end names the exec, not an entrypoint", async () => {
    const { backend, containers } = setup();
    backend.commands = () => ({ exit: { exitCode: null, signal: "SIGKILL", oomKilled: true } });
    const { id } = await containers.accept(ENV, spec({ upload: undefined }), 60, "create");
    await drain(containers.start(ENV, { id }));
    const r = await containers.exec(ENV, { id }, ["perl", "-e", "1"], { stdin: new Uint8Array([1]) });
    expect(r.exit).toMatchObject({ oomKilled: true });
    backend.containers.get(id)?.exit({ exitCode: null, signal: "SIGKILL", oomKilled: true });
    await until(async () => (await backend.records.get(id))?.status === "Failed");
    const record = await containers.find(ENV, { id });
    expect(record.statusMessage).toMatch(
      /^out of memory: a command run with exec used more than the container's 1 GiB/,
    );
    expect(record.statusMessage).not.toMatch(/entrypoint/);
  });
});

describe("after a restart", () => {
  test("runs left in a phase fail, running containers are adopted, lost ones fail, orphans are stopped", async () => {
    const { backend, containers } = setup();
    const pending = await containers.accept(ENV, spec(), 60, "create");
    const running = await containers.accept(ENV, spec({ upload: undefined }), 60, "create");
    await drain(containers.start(ENV, { id: running.id }));
    const lost = await containers.accept(ENV, spec({ upload: undefined }), 60, "create");
    await drain(containers.start(ENV, { id: lost.id }));
    backend.containers.delete(lost.id);
    const stopped = await containers.accept(ENV, spec({ upload: undefined }), 60, "create");
    await drain(containers.start(ENV, { id: stopped.id }));
    await containers.stop(ENV, { id: stopped.id }, 0);
    const orphan = backend.created.get(running.id) as FakeContainer;
    // A new server over the same backend.
    containers.close();
    const again = new Containers({
      backend,
      defaults: () => ({ cpu: "1", memory: "1Gi" }),
      execSlots: new ExecSlots(defaultExecSlotLimits(1)),
      metrics: new ServerMetrics(() => backend.records.countByStatus()),
      log: pino({ level: "silent" }),
    });
    await backend.createContainer({ ...orphan.launch, id: "orphan-id" });
    expect(await reconcile(again)).toEqual({ adopted: 1, failed: 2 });
    expect(await again.find(ENV, { id: pending.id })).toMatchObject({
      status: "Failed",
      phase: "upload",
      cleanedUp: true,
      statusMessage: "the server restarted while the run was waiting for its local files",
    });
    expect((await again.find(ENV, { id: lost.id })).statusMessage).toMatch(/vanished/);
    expect(await again.find(ENV, { id: running.id })).toMatchObject({ status: "Running" });
    expect(backend.containers.has("orphan-id")).toBe(false);
    backend.containers.get(running.id)?.exit({ exitCode: 0 });
    await until(async () => (await backend.records.get(running.id))?.status === "Failed");
    again.close();
  });
});
