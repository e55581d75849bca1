import { describe, expect, test } from "vitest";
import { type SandboxNetwork, sandboxRules } from "./network.js";

const net: SandboxNetwork = {
  netns: "chalk-0a1b2c3d",
  hostIf: "chk0a1b2c3d",
  peerIf: "chk0a1b2c3dp",
  gateway: "10.213.0.5",
  address: "10.213.0.6",
  slot: 1,
};

describe("a sandbox's iptables rules", () => {
  const rules = sandboxRules(net, "sb-1").filter((r) => r.family === 4);
  const forward = rules.filter((r) => r.chain === "CHALK-FWD").map((r) => r.spec.join(" "));
  const input = rules.filter((r) => r.chain === "CHALK-IN").map((r) => r.spec.join(" "));

  test("traffic to other sandboxes is dropped before outbound traffic is accepted", () => {
    const drop = forward.findIndex(
      (r) => r.includes(`-i ${net.hostIf} -d 10.213.0.0/16`) && r.endsWith("DROP"),
    );
    const accept = forward.findIndex(
      (r) => r.startsWith(`-i ${net.hostIf} -m comment`) && r.endsWith("ACCEPT"),
    );
    expect(drop).toBeGreaterThanOrEqual(0);
    expect(drop).toBeLessThan(accept);
  });

  test("only replies reach the host from the sandbox, and only replies are forwarded to it", () => {
    expect(input).toHaveLength(2);
    expect(input[0]).toMatch(/ESTABLISHED,RELATED .*ACCEPT$/);
    expect(input[1]).toMatch(new RegExp(`^-i ${net.hostIf} .*DROP$`));
    expect(forward.at(-2)).toMatch(new RegExp(`^-o ${net.hostIf} .*ESTABLISHED,RELATED.*ACCEPT$`));
    expect(forward.at(-1)).toMatch(new RegExp(`^-o ${net.hostIf} .*DROP$`));
  });

  test("every rule carries the sandbox's tag and outbound traffic is masqueraded", () => {
    for (const r of rules) expect(r.spec.join(" ")).toContain("--comment chalk:sb-1");
    expect(rules.find((r) => r.table === "nat")?.spec.join(" ")).toMatch(
      /^-s 10\.213\.0\.6\/32 ! -d 10\.213\.0\.0\/16 .*MASQUERADE$/,
    );
  });
});

describe("a sandbox's ip6tables rules", () => {
  const rules = sandboxRules(net, "sb-1").filter((r) => r.family === 6);
  const specs = rules.map((r) => `${r.chain} ${r.spec.join(" ")}`);

  test("all IPv6 from the sandbox to the host or through it, and to the sandbox, is dropped", () => {
    expect(specs).toContainEqual(expect.stringMatching(new RegExp(`^CHALK-IN -i ${net.hostIf} .*DROP$`)));
    expect(specs).toContainEqual(expect.stringMatching(new RegExp(`^CHALK-FWD -i ${net.hostIf} .*DROP$`)));
    expect(specs).toContainEqual(expect.stringMatching(new RegExp(`^CHALK-FWD -o ${net.hostIf} .*DROP$`)));
    expect(rules.every((r) => r.table === "filter" && r.spec.at(-1) === "DROP")).toBe(true);
  });

  test("every IPv6 rule carries the sandbox's tag, so the last network's teardown finds it", () => {
    for (const r of rules) expect(r.spec.join(" ")).toContain("--comment chalk:sb-1");
  });
});
