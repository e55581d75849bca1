import { ChalkError, Code } from "@chalk/core";
import { describe, expect, test } from "vitest";
import { requireCapability } from "./compute-backend.js";
import { InMemoryBackend } from "./in-memory-backend.js";

describe("optional capabilities", () => {
  test("a backend without one refuses with a typed unimplemented error that names where it is", async () => {
    const backend = new InMemoryBackend();
    try {
      let err: unknown;
      try {
        requireCapability(backend, "pause", ["local"]);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ChalkError);
      expect(err).toMatchObject({
        code: Code.Unimplemented,
        message: "[unimplemented] pause is not available on the in-memory backend; it is on: local",
        details: { capability: "pause", backend: "in-memory", availableOn: ["local"] },
      });
      backend.capabilities.add("pause");
      expect(() => requireCapability(backend, "pause", ["local"])).not.toThrow();
    } finally {
      await backend.close();
    }
  });
});
