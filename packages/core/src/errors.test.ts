import { describe, expect, test } from "vitest";
import { ChalkError, Code, invalidArgument, notFound, quote } from "./errors.js";

/** A second, separately evaluated copy of this module: what two installed versions of the package give. */
async function otherCopy(): Promise<typeof import("./errors.js")> {
  const specifier = "./errors.js?copy";
  return (await import(/* @vite-ignore */ specifier)) as typeof import("./errors.js");
}

describe("ChalkError", () => {
  test("the message starts with the code, and a given prefix is not doubled", () => {
    const err = new ChalkError(Code.NotFound, '[not_found] sandbox "x" not found');
    expect(err.message).toBe('[not_found] sandbox "x" not found');
    expect(err.rawMessage).toBe('sandbox "x" not found');
  });

  test("invalidArgument names the field in the message and in `field`", () => {
    const err = invalidArgument("resources.memory", '" 1Gi" is not a quantity', '"512Mi", "2Gi"');
    expect(err.field).toBe("resources.memory");
    expect(err.message).toBe(
      '[invalid_argument] resources.memory: " 1Gi" is not a quantity; accepted: "512Mi", "2Gi"',
    );
  });

  test("instanceof holds for a ChalkError made by another copy of the package", async () => {
    const copy = await otherCopy();
    expect(copy.ChalkError).not.toBe(ChalkError);
    const foreign = new copy.ChalkError(copy.Code.NotFound, "gone", { field: "id", details: { id: "x" } });
    expect(foreign).toBeInstanceOf(ChalkError);
    expect(new ChalkError(Code.Internal, "x")).toBeInstanceOf(copy.ChalkError);
    // ChalkError.from keeps a foreign ChalkError as it is instead of wrapping it as unknown.
    expect(ChalkError.from(foreign)).toBe(foreign);
  });

  test("instanceof is false for other errors and for look-alikes without the brand", () => {
    expect(new Error("x")).not.toBeInstanceOf(ChalkError);
    expect({ code: 5, message: "[not_found] x", name: "ChalkError" }).not.toBeInstanceOf(ChalkError);
    expect(null).not.toBeInstanceOf(ChalkError);
    expect("[not_found] x").not.toBeInstanceOf(ChalkError);
  });

  test("subclasses keep the ordinary prototype check", () => {
    class ConfigError extends ChalkError {}
    class OtherError extends ChalkError {}
    const err = new ConfigError(Code.InvalidArgument, "bad flag");
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toBeInstanceOf(ChalkError);
    expect(err).not.toBeInstanceOf(OtherError);
    expect(new ChalkError(Code.InvalidArgument, "x")).not.toBeInstanceOf(ConfigError);
  });

  test("from() translates Node system errors once", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    expect(ChalkError.from(refused).code).toBe(Code.Unavailable);
    expect(ChalkError.from("text").code).toBe(Code.Unknown);
  });
});

describe("quote and notFound", () => {
  test("quote escapes control characters and bounds the length", () => {
    expect(quote("a\0b\n")).toBe('"a\\u0000b\\n"');
    expect(quote("x".repeat(200), 4)).toBe('"xxxx"…');
  });

  test("notFound quotes at most 128 characters of the id", () => {
    const err = notFound("sandbox", "y".repeat(70_000));
    expect(err.message.length).toBeLessThan(200);
    expect(err.message).toMatch(/^\[not_found\] sandbox "y{128}"… not found$/);
  });
});
