import type { V1Secret } from "@kubernetes/client-node";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { CONTAINER_ID_LABEL } from "./kubernetes-names.js";
import { isOrphan } from "./orphan-secrets.js";

const NOW = Date.parse("2026-01-01T00:00:00Z");

function secret(o: { id?: string; ageMs: number; owned?: boolean }): V1Secret {
  return {
    metadata: {
      name: `c-${o.id ?? "x"}-env`,
      namespace: "chalk-default",
      uid: "u1",
      labels: o.id === undefined ? {} : { [CONTAINER_ID_LABEL]: o.id },
      creationTimestamp: new Date(NOW - o.ageMs),
      ...(o.owned ? { ownerReferences: [{ apiVersion: "v1", kind: "Pod", name: "p", uid: "pu" }] } : {}),
    },
  };
}

describe("which Secrets the orphan sweep deletes", () => {
  test("only an unowned container Secret past the grace period whose container has no Pod and is not being created", () => {
    const idle = () => false;
    expect(isOrphan(secret({ id: "a", ageMs: 20_000 }), NOW, 10_000, idle)).toBe(true);
    // Owned by its Pod: Kubernetes' garbage collector handles it.
    expect(isOrphan(secret({ id: "a", ageMs: 20_000, owned: true }), NOW, 10_000, idle)).toBe(false);
    // Younger than the grace period: a create may still be in flight.
    expect(isOrphan(secret({ id: "a", ageMs: 5_000 }), NOW, 10_000, idle)).toBe(false);
    // Its container has a Pod (or is being created in this process).
    expect(isOrphan(secret({ id: "a", ageMs: 20_000 }), NOW, 10_000, (id) => id === "a")).toBe(false);
    // Not a container's Secret.
    expect(isOrphan(secret({ ageMs: 20_000 }), NOW, 10_000, idle)).toBe(false);
  });

  test("property: a Secret is swept exactly when unowned, old enough and idle", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.boolean(),
        fc.boolean(),
        (ageMs, graceMs, owned, busy) => {
          const got = isOrphan(secret({ id: "c1", ageMs, owned }), NOW, graceMs, () => busy);
          expect(got).toBe(!owned && !busy && ageMs >= graceMs);
        },
      ),
    );
  });
});
