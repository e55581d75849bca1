/**
 * Runs every example against a real server: starts `chalk-server` on a temporary data dir and a free
 * loopback port, runs each `src/*.ts` as its own process with CHALK_API_SERVER / CHALK_TOKEN set,
 * then stops whatever containers are left and the server (by pid). Writes a result file for the
 * repository's test summary and exits non-zero when an example failed or the server logged a fatal
 * fault (an unhandled rejection or uncaught exception).
 *
 * Usage: pnpm --filter @chalk/examples test [name ...]
 */
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ContainerService, ContainerStatus } from "@chalk/proto/container/v1";
import { createClient } from "@chalk/rpc";
import { removeDataDir, startServerProcess } from "@chalk/server/testing";

const root = fileURLToPath(new URL("..", import.meta.url));
const only = process.argv.slice(2).filter((a) => a !== "--");
const order = ["quick-start", "resources", "env-and-secrets", "volumes", "exec", "port", "lifecycle"];
const examples = readdirSync(join(root, "src"))
  .filter((f) => f.endsWith(".ts"))
  .map((f) => f.replace(/\.ts$/, ""))
  .filter((n) => only.length === 0 || only.includes(n))
  .sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));

function runExample(name: string, env: Record<string, string>): Promise<{ ok: boolean; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        join(root, "node_modules/tsx/dist/cli.mjs"),
        "--conditions=@chalk/source",
        join(root, "src", `${name}.ts`),
      ],
      { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit"] },
    );
    const timer = setTimeout(() => child.kill("SIGKILL"), 15 * 60_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ ok: code === 0, ms: performance.now() - started });
    });
  });
}

// A persistent image store shared with the tests, so images are built once per machine.
const server = await startServerProcess({ args: ["--images-dir", "/var/cache/chalk/images"] });
const results: { name: string; ok: boolean; ms: number }[] = [];
try {
  for (const name of examples) {
    console.log(`\n=== example ${name}`);
    const r = await runExample(name, server.env);
    results.push({ name, ...r });
    console.log(`=== example ${name}: ${r.ok ? "ok" : "FAILED"} (${(r.ms / 1000).toFixed(1)}s)`);
  }
} finally {
  // Containers outlive the server by design: stop whatever an example left running.
  const client = createClient(ContainerService, server.transport());
  const left = await client.listContainers({}).catch(() => ({ containers: [] }));
  for (const c of left.containers) {
    if (c.status === ContainerStatus.PENDING || c.status === ContainerStatus.RUNNING) {
      await client.stopContainer({ ref: { case: "id", value: c.id } }).catch(() => undefined);
    }
  }
  // kill() rejects when the server logged an unhandled rejection or uncaught exception: a failure.
  await server.kill().catch((err: unknown) => {
    console.error(`\n=== the server logged a fatal fault:\n${(err as Error).message}`);
    results.push({ name: "server without fatal faults", ok: false, ms: 0 });
  });
  await removeDataDir(server.dataDir);
}

const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
const resultsDir = join(root, "..", ".test-results");
mkdirSync(resultsDir, { recursive: true });
writeFileSync(
  join(resultsDir, "examples.json"),
  JSON.stringify({ numPassedTests: passed, numFailedTests: failed, numPendingTests: 0, testResults: [] }),
);
console.log(`\nexamples: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
