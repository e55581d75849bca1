/**
 * Who may connect, and over what: a real server serving TLS from a certificate, a token granted
 * every environment and one granted two, and every service (container, sandbox, volume, secrets,
 * image) called through its SDK with each token in and out of its environments.
 */
import { ChalkError, Code } from "@chalk/core";
import { ImageClient } from "@chalk/image";
import { createTransport, type Transport } from "@chalk/rpc";
import { createTestCertificate } from "@chalk/rpc/testing";
import { connectSandboxes } from "@chalk/sandbox";
import { Secrets } from "@chalk/secrets";
import { Volume } from "@chalk/volume";
import { afterAll, describe, expect, test } from "vitest";
import { Container } from "../src/index.js";
import { TEST_IMAGE, useServer } from "./fixtures.js";

const TEAM_TOKEN = "team-token-for-a-and-b-0123456789";
const ctx = useServer(["--token", `${TEAM_TOKEN}@team-a,team-b`], { tls: true });

const opened: Transport[] = [];
afterAll(() => {
  for (const t of opened) t.close();
});

function transport(environment: string, token: string): Transport {
  const t = ctx.server.transport(environment, token);
  opened.push(t);
  return t;
}

/** One SDK call per service, each the cheapest read that service offers. */
const services: [string, (t: Transport) => Promise<unknown>][] = [
  ["container", (t) => Container.fromName("nobody-here", { transport: t }).catch(notFoundIsFine)],
  ["sandbox", (t) => connectSandboxes({ transport: t }).list()],
  ["volume", (t) => Volume.list({ transport: t })],
  ["secrets", (t) => Secrets.list({ transport: t })],
  ["image", (t) => new ImageClient({ transport: t }).list()],
];

/** `Container.fromName` of an absent name answers not_found once the call was admitted. */
function notFoundIsFine(err: unknown): null {
  if (err instanceof ChalkError && err.code === Code.NotFound) return null;
  throw err;
}

async function codeOf(call: () => Promise<unknown>): Promise<Code | 0> {
  try {
    await call();
    return 0;
  } catch (err) {
    if (!(err instanceof ChalkError)) throw err;
    return err.code;
  }
}

describe("tokens tied to environments", () => {
  test.each(services)("%s: a token granted every environment acts in any of them", async (_name, call) => {
    for (const env of ["default", "team-a", "team-c"]) {
      expect(await codeOf(() => call(transport(env, ctx.server.token))), env).toBe(0);
    }
  });

  test.each(services)("%s: a token granted team-a and team-b acts in those two", async (_name, call) => {
    for (const env of ["team-a", "team-b"]) {
      expect(await codeOf(() => call(transport(env, TEAM_TOKEN))), env).toBe(0);
    }
  });

  test.each(services)("%s: that token in another environment gets permission_denied", async (_name, call) => {
    for (const env of ["default", "team-c"]) {
      const err = await call(transport(env, TEAM_TOKEN)).catch((e: unknown) => e);
      expect(err, env).toBeInstanceOf(ChalkError);
      expect(err, env).toMatchObject({ code: Code.PermissionDenied, field: "environment" });
      expect((err as Error).message).toBe(
        `[permission_denied] this token may not act in environment "${env}"`,
      );
    }
  });

  test.each(services)("%s: an unknown token is unauthenticated in every environment", async (_name, call) => {
    expect(await codeOf(() => call(transport("team-a", "not-a-token-of-this-server")))).toBe(
      Code.Unauthenticated,
    );
  });

  test("a scoped token runs a container and execs in it over TLS; its other environment does not see it", async () => {
    const teamA = transport("team-a", TEAM_TOKEN);
    expect(teamA.tls).toBe(true);
    const c = new Container({ image: TEST_IMAGE, name: "tls-scoped", transport: teamA });
    try {
      await c.run();
      const r = await c.exec("sh", "-c", "echo over tls");
      expect(r.stdoutText).toBe("over tls\n");
      await expect(
        Container.fromName("tls-scoped", { transport: transport("team-b", TEAM_TOKEN) }),
      ).rejects.toMatchObject({ code: Code.NotFound });
    } finally {
      await c.stop().catch(() => undefined);
    }
  });
});

describe("TLS", () => {
  test("the SDK verifies the server with the CA in CHALK_TLS_CA, from the environment alone", async () => {
    const saved = { ...process.env };
    Object.assign(process.env, ctx.server.env, { CHALK_ENVIRONMENT: "team-a" });
    try {
      expect(process.env.CHALK_TLS_CA).toBe(ctx.server.caFile);
      expect(await Volume.list()).toEqual([]);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  test("a client that trusts another CA fails with a typed unavailable, for every service", async () => {
    const other = createTestCertificate();
    try {
      for (const [name, call] of services) {
        const t = createTransport({
          address: ctx.server.address,
          token: ctx.server.token,
          tls: { ca: other.cert },
        });
        opened.push(t);
        const err = await call(t).catch((e: unknown) => e);
        expect(err, name).toBeInstanceOf(ChalkError);
        expect(err, name).toMatchObject({ code: Code.Unavailable });
      }
    } finally {
      other.remove();
    }
  });

  test("a plaintext client cannot reach the TLS server", async () => {
    const t = createTransport({ address: ctx.server.address, token: ctx.server.token, tls: false });
    opened.push(t);
    await expect(Volume.list({ transport: t })).rejects.toMatchObject({ code: Code.Unavailable });
  });
});
