import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { kubectl, runScript, type TestCluster, testNamespace } from "../src/index.js";
import { useCluster } from "./fixtures.js";

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await useCluster();
});

/** The raw value etcd holds under `key`, read with etcdctl and the etcd admin client certificate. */
async function etcdValue(key: string): Promise<Buffer> {
  const pki = join(cluster.stateDir, "pki");
  const { stdout } = await runScript(cluster.etcdctl, [
    "--endpoints=https://127.0.0.1:23790",
    `--cacert=${join(pki, "etcd-ca.crt")}`,
    `--cert=${join(pki, "etcd-admin-client.crt")}`,
    `--key=${join(pki, "etcd-admin-client.key")}`,
    "get",
    key,
    "-w",
    "json",
  ]);
  const kvs = (JSON.parse(stdout) as { kvs?: { value: string }[] }).kvs ?? [];
  expect(kvs).toHaveLength(1);
  return Buffer.from(kvs[0]!.value, "base64");
}

describe("Secrets are encrypted at rest", () => {
  test("a Secret's value is not in etcd in plaintext, and the API still returns it", async () => {
    const value = `s3cret-${randomBytes(16).toString("hex")}`;
    await using ns = await testNamespace(cluster, "secrets");
    await kubectl(cluster, [
      "-n",
      ns.name,
      "create",
      "secret",
      "generic",
      "s",
      `--from-literal=token=${value}`,
    ]);
    // The same value in a ConfigMap, which is not encrypted: proof that the read finds plaintext.
    await kubectl(cluster, ["-n", ns.name, "create", "configmap", "c", `--from-literal=token=${value}`]);

    const secret = await etcdValue(`/registry/secrets/${ns.name}/s`);
    expect(secret.subarray(0, 26).toString()).toBe("k8s:enc:secretbox:v1:key1:");
    expect(secret.includes(value)).toBe(false);
    expect(secret.includes(Buffer.from(value).toString("base64"))).toBe(false);
    expect((await etcdValue(`/registry/configmaps/${ns.name}/c`)).includes(value)).toBe(true);

    const back = await kubectl(cluster, [
      "-n",
      ns.name,
      "get",
      "secret",
      "s",
      "-o",
      "jsonpath={.data.token}",
    ]);
    expect(Buffer.from(back, "base64").toString()).toBe(value);
  });
});
