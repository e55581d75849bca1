import { describe, expect, test } from "vitest";
import { planUploads } from "./upload-plan.js";

describe("planUploads", () => {
  test("files land under a tree mirroring their destinations; the fewest directories mount", () => {
    const plan = planUploads([
      { kind: "file", source: "./main.py", dest: "/app/main.py" },
      { kind: "dir", source: "./static", dest: "/app/static" },
      { kind: "file", source: "./cfg.toml", dest: "/etc/myapp/cfg.toml" },
    ]);
    expect(plan.entries.map((e) => e.volumePath)).toEqual([
      "tree/app/main.py",
      "tree/app/static",
      "tree/etc/myapp/cfg.toml",
    ]);
    expect(plan.targets).toEqual([
      { source: "tree/app", target: "/app" },
      { source: "tree/etc/myapp", target: "/etc/myapp" },
    ]);
  });

  test("a file directly in / or a relative destination is refused", () => {
    expect(() => planUploads([{ kind: "file", source: "a", dest: "/a.py" }])).toThrow(/invalid_argument/);
    expect(() => planUploads([{ kind: "file", source: "a", dest: "app/a.py" }])).toThrow(/invalid_argument/);
    expect(() => planUploads([{ kind: "dir", source: "a", dest: "/app/../etc" }])).toThrow(
      /invalid_argument/,
    );
  });

  test("no uploads, no mounts", () => {
    expect(planUploads([])).toEqual({ entries: [], targets: [] });
  });
});
