import { ChalkError, Code } from "@chalk/core";
import { isActive } from "@chalk/spec";
import type { Containers } from "./containers.js";

/**
 * Reconciles the records with the backend after a (re)start, without ever stopping a container
 * that runs: running containers are adopted and watched again; a container the backend lost is
 * Failed with the reason; a run a previous server left in one of its phases is Failed in that
 * phase and whatever it started is stopped; containers the backend still holds for records that
 * ended (a stop the server did not finish) are stopped; cleanups that did not finish are retried.
 */
export async function reconcile(c: Containers): Promise<{ adopted: number; failed: number }> {
  const { backend, log } = c;
  let adopted = 0;
  let failed = 0;
  for (const record of await backend.records.active()) {
    if (record.status === "Pending") {
      await c.apply(record.id, { type: "interrupted" });
      const left = await backend.adoptContainer(record.id).catch(() => undefined);
      if (left) c.live.set(record.id, { container: left });
      await c.finish(record.id);
      failed++;
      continue;
    }
    let container: Awaited<ReturnType<typeof backend.adoptContainer>>;
    try {
      container = await backend.adoptContainer(record.id);
    } catch (err) {
      const e = ChalkError.from(err);
      if (e.code !== Code.NotFound) {
        log.warn({ container: record.id, error: e.message }, "cannot inspect the container");
        await c.apply(record.id, { type: "unknown", reason: e.rawMessage });
        continue;
      }
      await c.apply(record.id, {
        type: "ended",
        end: {
          kind: "lost",
          reason: `it vanished: the ${backend.name} backend no longer knows it (found at server start)`,
        },
      });
      await c.finish(record.id);
      failed++;
      continue;
    }
    if (record.status === "Unknown") await c.apply(record.id, { type: "recovered" });
    c.live.set(record.id, { container });
    c.watch(record.id, container);
    adopted++;
  }
  for (const id of await backend.listContainers().catch(() => [] as string[])) {
    const record = await backend.records.get(id);
    if (record && isActive(record.status)) continue;
    const orphan = await backend.adoptContainer(id).catch(() => undefined);
    await orphan?.stop(0).catch(() => undefined);
  }
  for (const r of await backend.records.uncleaned()) await c.finish(r.id);
  log.info({ adopted, failed }, "reconciled containers with the backend");
  return { adopted, failed };
}
