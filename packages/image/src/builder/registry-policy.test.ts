import { ChalkError, Code } from "@chalk/core";
import { describe, expect, test } from "vitest";
import { Image } from "../image.js";
import { RegistryPolicy } from "./registry-policy.js";

// Logic only; the server's refusals before any request are in apps/server/test/ssrf.test.ts.
function refusal(f: () => unknown): ChalkError {
  try {
    f();
  } catch (err) {
    return ChalkError.from(err);
  }
  throw new Error("expected a refusal");
}

describe("RegistryPolicy", () => {
  const policy = new RegistryPolicy(["mirror.example.com"], "127.0.0.1:5000");

  test("the configured registry, the listed ones (any case) and references without a host pass", () => {
    for (const ref of ["127.0.0.1:5000/app:v1", "MIRROR.example.com/team/app", "python:3.12-slim", "app"]) {
      expect(policy.checkReference(ref, "image").repository).toBeTruthy();
    }
  });

  test("any other host, another port of an allowed host, loopback names and IP literals are invalid_argument naming the field", () => {
    for (const ref of [
      "127.0.0.1:5001/app",
      "127.0.0.1/app",
      "localhost:5000/app",
      "[::1]:5000/app",
      "mirror.example.com:443/app",
      "10.0.0.1:80/internal/admin:latest",
    ]) {
      const err = refusal(() => policy.checkReference(ref, "spec.image.uri"));
      expect(err.code, ref).toBe(Code.InvalidArgument);
      expect(err.field).toBe("spec.image.uri");
    }
  });

  test("a spec's registry base is checked under the spec's field", async () => {
    const spec = await Image.fromRegistry("evil.example.com/x").toSpec();
    expect(refusal(() => policy.checkSpec(spec, "spec")).field).toBe("spec.base.registry.reference");
    expect(() => policy.checkSpec(spec, "spec")).toThrow(/not one this server may contact/);
  });

  test("without a list every host passes (in-process users own the machine); an empty list allows only the configured one", () => {
    expect(new RegistryPolicy(undefined, undefined).checkReference("10.0.0.1:80/x", "image").registry).toBe(
      "10.0.0.1:80",
    );
    expect(
      refusal(() => new RegistryPolicy([], undefined).checkReference("h.example/x", "image")).message,
    ).toMatch(/no registry configured/);
  });
});
