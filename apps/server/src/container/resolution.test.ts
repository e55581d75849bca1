/** Secret and volume resolution before a container exists, against the in-memory backend (a test double). */
import { Code } from "@chalk/core";
import { afterEach, describe, expect, test } from "vitest";
import { InMemoryBackend } from "../backend/in-memory-backend.js";
import { prepareSecrets } from "./secret-resolution.js";
import { resolveVolumeMounts } from "./volume-resolution.js";

let backend: InMemoryBackend;
afterEach(async () => {
  await backend?.close();
});

describe("secret resolution", () => {
  test("local values are kept for the container only; the references carry no value", async () => {
    backend = new InMemoryBackend();
    backend.secretValues.set("default/API_KEY", "managed");
    const refs = await prepareSecrets(backend.secrets, "default", "owner-1", [
      { kind: "secret", name: "API_KEY" },
      { kind: "localEnv", name: "TOKEN", value: "local-value" },
    ]);
    expect(refs).toEqual([
      { kind: "secret", name: "API_KEY" },
      { kind: "localEnv", name: "TOKEN" },
    ]);
    expect(JSON.stringify(refs)).not.toContain("local-value");
    expect(backend.temporarySecrets.get("default/owner-1")?.get("TOKEN")).toBe("local-value");
  });

  test("a reference that does not resolve fails the whole request and keeps nothing", async () => {
    backend = new InMemoryBackend();
    await expect(
      prepareSecrets(backend.secrets, "default", "owner-2", [
        { kind: "localEnv", name: "TOKEN", value: "v" },
        { kind: "secret", name: "MISSING" },
      ]),
    ).rejects.toMatchObject({ code: Code.NotFound, message: expect.stringContaining("MISSING") });
    expect(backend.temporarySecrets.size).toBe(0);
  });
});

describe("volume resolution", () => {
  test("named volumes mount at their root; upload directories read-only, by path components", async () => {
    backend = new InMemoryBackend();
    backend.volumeNames.add("default/data");
    const mounts = await resolveVolumeMounts(
      backend.volumes,
      "default",
      [{ name: "data", mountPath: "/data", readOnly: false }],
      { volumeName: "up", targets: [{ source: "tree/app/static", target: "/app/static" }] },
    );
    expect(mounts).toEqual([
      { volume: "data", subPath: [], target: "/data", readOnly: false },
      { volume: "up", subPath: ["tree", "app", "static"], target: "/app/static", readOnly: true },
    ]);
  });

  test("a volume that does not exist is not_found naming it and the field", async () => {
    backend = new InMemoryBackend();
    await expect(
      resolveVolumeMounts(
        backend.volumes,
        "default",
        [{ name: "nope", mountPath: "/d", readOnly: false }],
        undefined,
      ),
    ).rejects.toMatchObject({
      code: Code.NotFound,
      field: "spec.volumes[0].name",
      message: expect.stringContaining("nope"),
    });
  });
});
