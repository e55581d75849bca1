/**
 * `Container.exec` results have the shape of `Sandbox.exec`'s (issue 10, "one result shape"):
 * `oomKilled` and `timedOut`, through the public SDK against a real server and real gVisor.
 */
import { describe, expect } from "vitest";
import { containerTest, TEST_IMAGE, useServer } from "./fixtures.js";

const ctx = useServer(["--default-memory", "256Mi", "--default-cpu", "500m"]);
const test = containerTest(() => ctx.server);
const unique = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;

describe("exec results", () => {
  test("a command the OOM killer ends says oomKilled, as Sandbox.exec does; others say false", async ({
    run,
  }) => {
    const c = await run({ image: TEST_IMAGE, name: unique("oom") });
    const ok = await c.exec("true");
    expect(ok).toMatchObject({ exitCode: 0, oomKilled: false, timedOut: false });
    // The same fields as the sandbox's own exec result.
    const viaSandbox = await c.sandbox.exec("true");
    expect(Object.keys(ok).sort()).toEqual(Object.keys(viaSandbox).sort());
    // 1.5 GiB in a 256Mi container.
    const oom = await c.exec("perl", "-e", '$x = "x" x (1536 * 1024 * 1024); print length $x');
    expect(oom.oomKilled).toBe(true);
    expect(oom.exitCode).not.toBe(0);
  });
});
