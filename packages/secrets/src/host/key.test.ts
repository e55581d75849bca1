import { randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { aadFor, keyId, parseKey, seal, unseal } from "./key.js";

describe("sealing with AES-256-GCM", () => {
  const key = randomBytes(32);
  const aad = aadFor("secret", "default", "NAME");

  test("a sealed value opens with the same key and binding", () => {
    const sealed = seal(key, Buffer.from("hunter2"), aad);
    expect(unseal(key, sealed, aad)?.toString()).toBe("hunter2");
  });

  test("the ciphertext does not contain the plaintext, and two seals differ (fresh nonce)", () => {
    const plain = Buffer.from("the same value every time");
    const a = seal(key, plain, aad);
    const b = seal(key, plain, aad);
    expect(a.includes(plain)).toBe(false);
    expect(a.subarray(1, 13).equals(b.subarray(1, 13))).toBe(false);
    expect(a.byteLength).toBe(1 + 12 + plain.byteLength + 16);
  });

  test("another key, another binding or a flipped bit all fail to open instead of giving garbage", () => {
    const sealed = seal(key, Buffer.from("value"), aad);
    expect(unseal(randomBytes(32), sealed, aad)).toBeUndefined();
    expect(unseal(key, sealed, aadFor("secret", "staging", "NAME"))).toBeUndefined();
    expect(unseal(key, sealed, aadFor("secret", "default", "OTHER"))).toBeUndefined();
    for (const i of [0, 5, sealed.byteLength - 20, sealed.byteLength - 1]) {
      const tampered = Buffer.from(sealed);
      tampered[i] = (tampered[i] ?? 0) ^ 1;
      expect(unseal(key, tampered, aad)).toBeUndefined();
    }
    expect(unseal(key, sealed.subarray(0, 10), aad)).toBeUndefined();
  });

  test("an empty value round-trips", () => {
    expect(unseal(key, seal(key, Buffer.alloc(0), aad), aad)?.byteLength).toBe(0);
  });
});

describe("parseKey", () => {
  const raw = randomBytes(32);
  test.each([
    ["bytes", raw],
    ["hex", raw.toString("hex")],
    ["base64", raw.toString("base64")],
    ["base64 with a newline", `${raw.toString("base64")}\n`],
  ])("accepts %s", (_label, form) => {
    expect(parseKey(form as Uint8Array | string).equals(raw)).toBe(true);
  });

  test.each([
    ["16 bytes", randomBytes(16)],
    ["short base64", randomBytes(16).toString("base64")],
    ["not an encoding", "this is not a key!"],
  ])("rejects %s without echoing it", (_label, form) => {
    let message = "";
    try {
      parseKey(form as Uint8Array | string);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^\[invalid_argument\] key: /);
    if (typeof form === "string") expect(message).not.toContain(form);
  });

  test("key ids differ between keys and reveal nothing of the key", () => {
    const id = keyId(raw);
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(raw.toString("hex")).not.toContain(id);
    expect(keyId(randomBytes(32))).not.toBe(id);
  });
});
