import { mkdtemp, readFile, rm } from "node:fs/promises";
import { request } from "node:https";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { runScript, type TestCluster } from "../src/index.js";
import { useCluster } from "./fixtures.js";

let cluster: TestCluster;
let ca: Buffer;

beforeAll(async () => {
  cluster = await useCluster();
  ca = await readFile(join(cluster.stateDir, "pki", "ca.crt"));
});

/** GET https://node:PORT/PATH with an optional client certificate; resolves to the HTTP status. */
function httpsStatus(port: number, path: string, cert?: { cert: Buffer; key: Buffer }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: cluster.nodeAddress, port, path, method: "GET", ca, ...cert, timeout: 5000 },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end();
  });
}

/** The kubelet's `/pods` (port 10250). */
const kubeletStatus = (cert?: { cert: Buffer; key: Buffer }) => httpsStatus(10250, "/pods", cert);

/** A client certificate of the cluster CA for a user that no RBAC rule names. */
async function strangerCert(): Promise<{ cert: Buffer; key: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), "chalk-stranger-"));
  try {
    const pki = join(cluster.stateDir, "pki");
    await runScript("openssl", [
      "ecparam",
      "-name",
      "prime256v1",
      "-genkey",
      "-noout",
      "-out",
      join(dir, "k"),
    ]);
    await runScript("openssl", [
      "req",
      "-new",
      "-key",
      join(dir, "k"),
      "-subj",
      "/CN=stranger",
      "-out",
      join(dir, "csr"),
    ]);
    await runScript("openssl", [
      "x509",
      "-req",
      "-in",
      join(dir, "csr"),
      "-CA",
      join(pki, "ca.crt"),
      "-CAkey",
      join(pki, "ca.key"),
      "-CAcreateserial",
      "-CAserial",
      join(dir, "srl"),
      "-days",
      "1",
      "-out",
      join(dir, "crt"),
    ]);
    return { cert: await readFile(join(dir, "crt")), key: await readFile(join(dir, "k")) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("the kubelet authenticates and authorizes every request", () => {
  test("an anonymous request is rejected with 401", async () => {
    expect(await kubeletStatus()).toBe(401);
  });

  test("an authenticated user without RBAC permission on nodes/proxy gets 403 (webhook authorization)", async () => {
    expect(await kubeletStatus(await strangerCert())).toBe(403);
  });

  test("the API server's kubelet client certificate is allowed", async () => {
    const pki = join(cluster.stateDir, "pki");
    const cert = await readFile(join(pki, "apiserver-kubelet-client.crt"));
    const key = await readFile(join(pki, "apiserver-kubelet-client.key"));
    expect(await kubeletStatus({ cert, key })).toBe(200);
  });

  test("the API server refuses anonymous requests too (401)", async () => {
    expect(await httpsStatus(6443, "/api/v1/namespaces")).toBe(401);
    expect(await httpsStatus(6443, "/readyz")).toBe(401);
  });

  test("the read-only port 10255 is closed", async () => {
    const refused = await new Promise<boolean>((resolve) => {
      const s = connect({ host: cluster.nodeAddress, port: 10255 });
      s.on("connect", () => {
        s.destroy();
        resolve(false);
      });
      s.on("error", () => resolve(true));
    });
    expect(refused).toBe(true);
  });
});
