/**
 * chalk against a server that serves TLS: the certificate is verified with CHALK_TLS_CA, with a
 * context's CA (`chalk login --ca`), and a CA that did not sign it fails the command as unavailable.
 */
import { createTestCertificate } from "@chalk/rpc/testing";
import { afterAll, describe, expect, test } from "vitest";
import { useCli } from "./fixtures.js";

const cli = useCli([], { tls: true });
const other = createTestCertificate();
afterAll(() => other.remove());

/** Only what a context gives: no address, token or CA from the environment. */
const contextOnly = { CHALK_API_SERVER: undefined, CHALK_TOKEN: undefined, CHALK_TLS_CA: undefined };

describe("chalk over TLS", () => {
  test("CHALK_TLS_CA verifies the server's certificate", async () => {
    const ps = await cli.chalk(["ps"]);
    expect(ps.code, ps.stderr).toBe(0);
  });

  test("a context's CA verifies it: login checks the token over TLS, later commands use the context", async () => {
    const login = await cli.chalk(
      ["login", cli.server.address, "--name", "tls", "--ca", cli.server.caFile ?? ""],
      {
        env: contextOnly,
        input: `${cli.server.token}\n`,
      },
    );
    expect(login.code, login.stderr).toBe(0);
    const ps = await cli.chalk(["ps"], { env: contextOnly });
    expect(ps.code, ps.stderr).toBe(0);
  });

  test("a CA that did not sign the certificate fails with unavailable, never falling back to plaintext", async () => {
    const ps = await cli.chalk(["ps", "--ca", other.certFile], { env: { CHALK_TLS_CA: undefined } });
    expect(ps.code).toBe(1);
    expect(ps.stderr).toMatch(/^chalk: \[unavailable\]/);
  });
});
