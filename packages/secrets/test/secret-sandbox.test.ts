import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { lstat, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Sandbox } from "@chalk/sandbox";
import { LocalRuntime } from "@chalk/sandbox/local";
import { expect, test } from "vitest";
import { SecretStore } from "../src/host/index.js";
import { Secret } from "../src/index.js";

const rootfs = execFileSync("bash", [join(import.meta.dirname, "../../../tooling/scripts/rootfs.sh")], {
  encoding: "utf8",
}).trim();

/**
 * Runs a shell script in a sandbox. The script waits for stdin's EOF before exiting: runsc
 * 20221219's `exec` drops a process's output when the process exits while runsc's stdin pipe is
 * still open, which is what happens to short commands under `exec`.
 */
async function sh(sandbox: Sandbox, script: string) {
  return sandbox.exec("sh", "-c", `${script}\ns=$?; cat >/dev/null; exit $s`);
}

/** Whether any regular file below `dir` contains `text`. */
async function treeContains(dir: string, text: string): Promise<string | undefined> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const full = join(dir, name);
    const st = await lstat(full);
    if (st.isDirectory()) {
      const hit = await treeContains(full, text);
      if (hit) return hit;
    } else if (st.isFile() && st.size < 64 * 1024 * 1024 && (await readFile(full)).includes(text)) {
      return full;
    }
  }
  return undefined;
}

test("a secret resolved into a sandbox's environment is visible there and nowhere else", {
  timeout: 180_000,
}, async () => {
  const root = await mkdtemp(join(tmpdir(), "chalk-secret-sandbox-"));
  const stateDir = join(root, "sandboxes");
  const store = await SecretStore.open({ path: join(root, "secrets.db") });
  const runtime = new LocalRuntime({ stateDir });
  const made: Sandbox[] = [];
  try {
    const marker = `injected-${randomBytes(8).toString("hex")}`;
    store.setSecret("default", "API_TOKEN", marker);
    store.setIntegration("default", "pg", { PGPASSWORD: `${marker}-pg`, PGHOST: "db" });
    const local = Secret.fromLocalEnv("LOCAL_TOKEN", { env: { LOCAL_TOKEN: `${marker}-local` } });
    store.setTemporaryFrom("default", "container-1", [local]);
    const env = store.resolve(
      "default",
      [Secret.fromEnv("API_TOKEN"), Secret.fromIntegration("pg", { keys: ["PGPASSWORD"] }), local],
      { owner: "container-1" },
    );

    const withSecret = await runtime.create({ rootfs, env });
    made.push(withSecret);
    const without = await runtime.create({ rootfs });
    made.push(without);

    const inside = await sh(withSecret, 'printf "%s|%s|%s" "$API_TOKEN" "$PGPASSWORD" "$LOCAL_TOKEN"');
    expect(inside.stdoutText).toBe(`${marker}|${marker}-pg|${marker}-local`);
    expect((await sh(withSecret, 'test -z "$PGHOST" && printf unset')).stdoutText).toBe("unset");

    // Another sandbox, running at the same time, sees none of it anywhere in its processes.
    const other = await sh(without, "env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'");
    expect(other.stdoutText).not.toContain(marker);
    // Nor does the host process that resolved it.
    expect(JSON.stringify(process.env)).not.toContain(marker);

    // Once the sandbox is gone, nothing the runtime keeps on disk holds the value.
    await withSecret.stop();
    made.splice(made.indexOf(withSecret), 1);
    expect(await treeContains(stateDir, marker)).toBeUndefined();

    store.deleteOwner("default", "container-1");
    expect(store.listTemporary("default", "container-1")).toEqual([]);
  } finally {
    for (const s of made) await s.stop().catch((err: unknown) => console.error(`cannot stop ${s.id}:`, err));
    store.close();
    await rm(root, { recursive: true, force: true });
  }
});
