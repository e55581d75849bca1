import { inspect } from "node:util";
import { create } from "@bufbuild/protobuf";
import { ChalkError, Code } from "@chalk/core";
import { SecretSourceSchema } from "@chalk/proto/secrets/v1";
import { describe, expect, test } from "vitest";
import { Secret } from "./secret.js";
import { secretFromProto, secretToProto } from "./secret-proto.js";

describe("Secret specs", () => {
  test("fromEnv describes a managed secret injected under its name", () => {
    const s = Secret.fromEnv("OPENAI_API_KEY");
    expect(s.toJSON()).toEqual({ kind: "secret", name: "OPENAI_API_KEY" });
    expect(s.revealLocalValue()).toBeUndefined();
  });

  test("fromIntegration keeps the chosen keys, deduplicated", () => {
    const s = Secret.fromIntegration("prod_postgres", { keys: ["PGHOST", "PGPASSWORD", "PGHOST"] });
    expect(s.keys).toEqual(["PGHOST", "PGPASSWORD"]);
    expect(Secret.fromIntegration("prod_postgres").keys).toBeUndefined();
  });

  test("specs are immutable", () => {
    const s = Secret.fromIntegration("pg", { keys: ["A"] });
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(s.keys)).toBe(true);
    expect(() => {
      (s as { name: string }).name = "other";
    }).toThrow(TypeError);
  });

  test("fromLocalEnv captures the value when called, and later changes do not affect it", () => {
    const env: Record<string, string | undefined> = { HF_TOKEN: "hf_captured" };
    const s = Secret.fromLocalEnv("HF_TOKEN", { env });
    env.HF_TOKEN = "hf_changed";
    expect(s.revealLocalValue()).toBe("hf_captured");
  });

  test("a spec never shows a captured value in JSON, strings or console output", () => {
    const s = Secret.fromLocalEnv("TOKEN", { env: { TOKEN: "super-secret-value" } });
    expect(JSON.stringify({ secrets: [s] })).toBe('{"secrets":[{"kind":"localEnv","name":"TOKEN"}]}');
    expect(String(s)).toBe('Secret.fromLocalEnv("TOKEN")');
    expect(inspect(s, { showHidden: true, depth: 10 })).not.toContain("super-secret-value");
    expect(inspect({ nested: [s] })).not.toContain("super-secret-value");
  });

  test("fromLocalEnv of an unset variable is failed_precondition naming it", () => {
    let err: unknown;
    try {
      Secret.fromLocalEnv("NOT_SET_ANYWHERE", { env: {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ChalkError);
    expect((err as ChalkError).code).toBe(Code.FailedPrecondition);
    expect((err as ChalkError).message).toMatch(/"NOT_SET_ANYWHERE" is not set/);
  });

  test("fromLocalEnv reads process.env by default", () => {
    process.env.CHALK_SECRETS_UNIT_TEST = "from-process";
    try {
      expect(Secret.fromLocalEnv("CHALK_SECRETS_UNIT_TEST").revealLocalValue()).toBe("from-process");
    } finally {
      delete process.env.CHALK_SECRETS_UNIT_TEST;
    }
  });

  test.each([
    ["fromEnv", () => Secret.fromEnv("1BAD")],
    ["fromEnv with a dash", () => Secret.fromEnv("MY-KEY")],
    ["fromIntegration", () => Secret.fromIntegration("pg", { keys: ["ok", "not ok"] })],
    ["fromIntegration with empty keys", () => Secret.fromIntegration("pg", { keys: [] })],
    ["fromLocalEnv", () => Secret.fromLocalEnv("", { env: {} })],
  ])("%s rejects invalid names with invalid_argument", (_label, make) => {
    expect(make).toThrow(/^\[invalid_argument\] /);
  });

  test("a local value over 64 KiB is refused without repeating it", () => {
    const big = "v".repeat(64 * 1024 + 1);
    expect(() => Secret.fromLocalEnv("BIG", { env: { BIG: big } })).toThrow(
      /\[invalid_argument\] BIG: is 65537 bytes/,
    );
  });

  test("specs survive the trip through the SecretSource message", () => {
    for (const s of [
      Secret.fromEnv("A"),
      Secret.fromIntegration("pg", { keys: ["PGHOST"] }),
      Secret.fromIntegration("pg"),
      Secret.fromLocalEnv("L", { env: { L: "v" } }),
    ]) {
      const back = secretFromProto(create(SecretSourceSchema, secretToProto(s)));
      expect(back.toJSON()).toEqual(s.toJSON());
      expect(back.revealLocalValue()).toBe(s.revealLocalValue());
    }
  });
});
