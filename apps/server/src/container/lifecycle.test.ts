import { CONTAINER_STATUSES, type ContainerStatus, isActive, RUN_PHASES, type RunPhase } from "@chalk/spec";
import { describe, expect, test } from "vitest";
import { type LifecycleEvent, type LifecycleState, transition } from "./lifecycle.js";

const exit = (e: Partial<{ exitCode: number | null; signal: string | null; oomKilled: boolean }>) => ({
  kind: "exited" as const,
  exit: { exitCode: null, signal: null, timedOut: false, oomKilled: false, ...e },
});

const events: LifecycleEvent[] = [
  { type: "start" },
  { type: "built", imageUri: "img", imageDigest: "", entrypoint: [] },
  { type: "created", sandboxId: "sb", address: "" },
  { type: "ready" },
  { type: "ended", end: exit({ exitCode: 0 }) },
  { type: "failed", reason: "BuildFailed", message: "boom" },
  { type: "deadline", readyTimeoutSecs: 5 },
  { type: "stop" },
  { type: "interrupted" },
  { type: "unknown", reason: "no answer" },
  { type: "recovered" },
];

/** Every state a container can be in: Pending in each phase, and every other status. */
const states: LifecycleState[] = [
  ...RUN_PHASES.map((phase) => ({
    status: "Pending" as ContainerStatus,
    phase,
    entrypoint: [],
    memoryBytes: 2 ** 28,
  })),
  ...CONTAINER_STATUSES.filter((s) => s !== "Pending").map((status) => ({
    status,
    phase: undefined,
    entrypoint: [],
    memoryBytes: 2 ** 28,
  })),
];

const label = (s: LifecycleState) => (s.status === "Pending" ? `Pending/${s.phase}` : s.status);

/** The transitions the state machine allows: state label → events that apply. */
const allowed: Record<string, LifecycleEvent["type"][]> = {
  "Pending/upload": ["start", "failed", "deadline", "stop", "interrupted"],
  "Pending/build": ["built", "failed", "deadline", "stop", "interrupted"],
  "Pending/create": ["created", "failed", "deadline", "stop", "interrupted"],
  "Pending/readiness": ["ready", "ended", "failed", "deadline", "stop", "interrupted"],
  Running: ["ended", "stop", "unknown"],
  Unknown: ["ended", "stop", "recovered"],
  Succeeded: [],
  Failed: [],
  Stopped: [],
};

describe("the lifecycle state machine", () => {
  test("applies exactly the allowed events in each state", () => {
    for (const state of states) {
      const applies = events.filter((e) => transition(state, e) !== undefined).map((e) => e.type);
      expect(applies, label(state)).toEqual(allowed[label(state)]);
    }
  });

  test("a final status is never left: nothing applies to Succeeded, Failed or Stopped", () => {
    for (const state of states.filter((s) => !isActive(s.status))) {
      for (const e of events) expect(transition(state, e), `${label(state)} + ${e.type}`).toBeUndefined();
    }
  });

  test("Pending moves through its phases in order, then Running", () => {
    const order: [RunPhase, LifecycleEvent][] = [
      ["upload", events[0]!],
      ["build", events[1]!],
      ["create", events[2]!],
    ];
    for (const [i, [phase, event]] of order.entries()) {
      const next = transition({ status: "Pending", phase, entrypoint: [], memoryBytes: 1 }, event);
      expect(next).toMatchObject({ phase: RUN_PHASES[i + 1] });
    }
    expect(
      transition(
        { status: "Pending", phase: "readiness", entrypoint: [], memoryBytes: 1 },
        { type: "ready" },
      ),
    ).toEqual({
      status: "Running",
      phase: undefined,
      statusMessage: "",
      reason: "",
    });
  });

  test("a stop wins in every active state, and a Pending one keeps the phase it was stopped in", () => {
    for (const state of states.filter((s) => isActive(s.status))) {
      const next = transition(state, { type: "stop" }, 42);
      expect(next, label(state)).toMatchObject({
        status: "Stopped",
        reason: "Stopped",
        stoppedAt: 42,
        phase: state.phase,
      });
      if (state.status === "Pending") expect(next?.statusMessage).toMatch(/^stopped by request while /);
    }
  });

  test("deadline, failure and restart end a Pending run in its phase, with a message that names it", () => {
    const s: LifecycleState = { status: "Pending", phase: "build", entrypoint: [], memoryBytes: 1 };
    expect(transition(s, { type: "deadline", readyTimeoutSecs: 5 })).toMatchObject({
      status: "Failed",
      reason: "DeadlineExceeded",
      phase: "build",
      statusMessage: expect.stringMatching(/within 5s .*readyTimeoutSecs.*building the image/),
    });
    expect(transition(s, { type: "interrupted" })?.statusMessage).toMatch(
      /server restarted while the run was building/,
    );
  });
});

describe("how a container's end is worded", () => {
  const ended = (entrypoint: string[], e: LifecycleEvent & { type: "ended" }) =>
    transition({ status: "Running", phase: undefined, entrypoint, memoryBytes: 256 * 2 ** 20 }, e);

  test("an entrypoint's exit code decides Succeeded or Failed", () => {
    expect(ended(["app"], { type: "ended", end: exit({ exitCode: 0 }) })).toMatchObject({
      status: "Succeeded",
      reason: "Completed",
      exitCode: 0,
      statusMessage: "the entrypoint exited with code 0",
    });
    expect(ended(["app"], { type: "ended", end: exit({ exitCode: 3 }) })).toMatchObject({
      status: "Failed",
      reason: "Error",
      exitCode: 3,
      statusMessage: "the entrypoint exited with code 3",
    });
    expect(ended(["app"], { type: "ended", end: exit({ signal: "SIGTERM" }) })?.statusMessage).toBe(
      "the entrypoint was killed by SIGTERM",
    );
  });

  test("a container without an entrypoint never claims one: its idle process and its execs are named", () => {
    const idle = ended([], { type: "ended", end: exit({ exitCode: 0 }) });
    expect(idle).toMatchObject({
      status: "Failed",
      statusMessage: "the container's idle process exited with code 0",
    });
    const oom = ended([], { type: "ended", end: exit({ signal: "SIGKILL", oomKilled: true }) });
    expect(oom?.reason).toBe("OOMKilled");
    expect(oom?.statusMessage).toMatch(
      /^out of memory: a command run with exec used more than the container's 256 MiB/,
    );
    expect(oom?.statusMessage).not.toMatch(/entrypoint/);
  });

  test("an OOM kill is put on the exec that caused it, or on the entrypoint", () => {
    const byExec = ended(["app"], {
      type: "ended",
      end: exit({ signal: "SIGKILL", oomKilled: true }),
      oomInExec: true,
    });
    expect(byExec?.statusMessage).toMatch(/a command run with exec .* \(entrypoint included\)/);
    const byEntrypoint = ended(["app"], { type: "ended", end: exit({ signal: "SIGKILL", oomKilled: true }) });
    expect(byEntrypoint?.statusMessage).toBe(
      "out of memory: the entrypoint used more than the container's 256 MiB and was killed",
    );
  });

  test("a lost container is Failed with the reason", () => {
    expect(ended([], { type: "ended", end: { kind: "lost", reason: "it vanished" } })).toMatchObject({
      status: "Failed",
      statusMessage: "the container was lost: it vanished",
    });
  });
});
