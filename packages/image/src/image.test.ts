import { createHash } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { ChalkError, Code } from "@chalk/core";
import { FileKind, ImageSpecSchema } from "@chalk/proto/image/v1";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { Image } from "./image.js";
import { canonicalSpec, decodeImageSpec, encodeImageSpec, specDigest } from "./spec.js";

function invalid(fn: () => unknown): ChalkError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ChalkError);
    expect((err as ChalkError).code).toBe(Code.InvalidArgument);
    return err as ChalkError;
  }
  throw new Error("expected invalid_argument");
}

const sha = (c: string) => c.repeat(64);

function fileSpec(files: { path: string; sha256: string; mode?: number }[]) {
  return create(ImageSpecSchema, {
    base: { source: { case: "debianSlim", value: { pythonVersion: "3.11" } } },
    steps: [
      {
        kind: {
          case: "addFiles",
          value: {
            files: files.map((f) => ({
              path: f.path,
              kind: FileKind.REGULAR,
              mode: f.mode ?? 0o644,
              sha256: f.sha256,
              sizeBytes: 1n,
            })),
          },
        },
      },
    ],
  });
}

describe("digest", () => {
  test("equal specs built in different orders of env keys and packages have one digest", async () => {
    const a = Image.debianSlim("3.11").pipInstall(["requests", "numpy"]).env({ B: "2", A: "1" });
    const b = Image.debianSlim("3.11").pipInstall(["numpy", "requests", "numpy"]).env({ A: "1", B: "2" });
    expect(await a.digest()).toBe(await b.digest());
    expect(await a.digest()).toMatch(/^sha256:[a-f0-9]{64}$/);
  });

  test("adjacent env calls equal one env call with the later value winning", async () => {
    const a = Image.debianSlim().env({ A: "1" }).env({ B: "2", A: "3" });
    const b = Image.debianSlim().env({ A: "3", B: "2" });
    expect(await a.digest()).toBe(await b.digest());
  });

  test("the digest is a fixed function of the spec: a known spec has a known digest", async () => {
    // Pinned: a change here changes every cached image's identity, so it must be deliberate.
    const d = await Image.debianSlim("3.11").pipInstall(["requests"]).digest();
    expect(d).toBe(
      specDigest(canonicalSpec(await Image.debianSlim("3.11").pipInstall(["requests"]).toSpec())),
    );
    expect(d).toMatchInlineSnapshot(
      `"sha256:f6abbd1cf834bdd5f8fb6ba706ed34acf4992fff7150892f7689de7510478e67"`,
    );
  });

  test("different steps, step order, Python versions and entrypoints give different digests", async () => {
    const base = Image.debianSlim("3.11");
    const digests = await Promise.all([
      base.digest(),
      Image.debianSlim("3.13").digest(),
      base.pipInstall(["requests"]).digest(),
      base.pipInstall(["requests==2.32.3"]).digest(),
      base.pipInstall(["requests"]).aptInstall(["curl"]).digest(),
      base.aptInstall(["curl"]).pipInstall(["requests"]).digest(),
      base.runCommands("echo a").digest(),
      base.runCommands("echo b").digest(),
      base.entrypoint(["python"]).digest(),
      base.workdir("/app").digest(),
      base.pipInstall(["requests"], { indexUrl: "https://example.org/simple" }).digest(),
      Image.fromRegistry("python:3.11-slim").digest(),
    ]);
    expect(new Set(digests).size).toBe(digests.length);
  });

  test("volume files do not change the digest", async () => {
    const plain = Image.debianSlim().pipInstall(["requests"]);
    const withVolume = plain
      .addLocalFile("/nonexistent/config.json", "/app/config.json")
      .addLocalDir("/nonexistent/dir", "/app/data", { strategy: "volume" });
    expect(await withVolume.digest()).toBe(await plain.digest());
    expect(withVolume.localUploads()).toEqual([
      { kind: "file", source: "/nonexistent/config.json", dest: "/app/config.json", skip: [] },
      { kind: "dir", source: "/nonexistent/dir", dest: "/app/data", skip: [".git"] },
    ]);
  });

  test("copied files count by content hash, not by content bytes or order", () => {
    const one = fileSpec([
      { path: "/app/a", sha256: sha("a") },
      { path: "/app/b", sha256: sha("b") },
    ]);
    const reordered = fileSpec([
      { path: "/app/b", sha256: sha("b") },
      { path: "/app/a", sha256: sha("a") },
    ]);
    const changed = fileSpec([
      { path: "/app/a", sha256: sha("c") },
      { path: "/app/b", sha256: sha("b") },
    ]);
    const chmod = fileSpec([
      { path: "/app/a", sha256: sha("a"), mode: 0o755 },
      { path: "/app/b", sha256: sha("b") },
    ]);
    const d = (s: typeof one) => specDigest(canonicalSpec(s));
    expect(d(reordered)).toBe(d(one));
    expect(d(changed)).not.toBe(d(one));
    expect(d(chmod)).not.toBe(d(one));
    const withContent = canonicalSpec(one);
    const step = withContent.steps[0]!.kind;
    if (step.case !== "addFiles") throw new Error("expected addFiles");
    step.value.files[0]!.content = new Uint8Array([1]);
    expect(specDigest(withContent)).toBe(d(one));
  });

  test("a spec survives encoding and decoding with the same digest", async () => {
    const spec = await Image.debianSlim()
      .aptInstall(["curl"])
      .env({ X: "1" })
      .entrypoint(["sleep", "1"])
      .toSpec();
    const back = decodeImageSpec(encodeImageSpec(spec));
    expect(specDigest(back)).toBe(specDigest(spec));
    expect(toBinary(ImageSpecSchema, back)).toEqual(toBinary(ImageSpecSchema, spec));
  });

  test("every method returns a new image and leaves the old one unchanged", async () => {
    const a = Image.debianSlim();
    const before = await a.digest();
    const b = a.pipInstall(["requests"]);
    expect(b).not.toBe(a);
    expect(await a.digest()).toBe(before);
    expect(a.toDockerfile()).toBe("FROM python:3.11-slim\n");
  });
});

describe("validation", () => {
  test.each([
    ["", "packages[0]"],
    ["-e git+https://x", "packages[0]"],
    ["--index-url=http://evil", "packages[0]"],
    ["requests; rm -rf /\nx", "packages[0]"],
    ["requests>=", "packages[0]"],
    ["re quests", "packages[0]"],
    ["requests\0", "packages[0]"],
    ["./local/path", "packages[0]"],
  ])("pipInstall rejects %j naming %s", (pkg, field) => {
    const err = invalid(() => Image.debianSlim().pipInstall([pkg]));
    expect(err.field).toBe(field);
    expect(err.message).toContain(field);
  });

  test.each([
    "requests",
    "Requests_Toolbelt",
    "requests[socks,security]>=2.31,<3",
    "numpy==1.26.*",
    'tomli; python_version < "3.11"',
    "pkg @ https://example.org/pkg-1.0-py3-none-any.whl",
    "torch===2.3.0+cpu",
    "a",
  ])("pipInstall accepts %j", (pkg) => {
    expect(() => Image.debianSlim().pipInstall([pkg])).not.toThrow();
  });

  test.each(["", "Curl", "c", "-y", "curl; reboot", "curl bash", "lib$(id)", "curl=", "curl/"])(
    "aptInstall rejects %j",
    (pkg) => {
      expect(invalid(() => Image.debianSlim().aptInstall([pkg])).field).toBe("packages[0]");
    },
  );

  test.each([
    "curl",
    "libpq-dev",
    "g++",
    "python3.11-venv",
    "curl=7.88.1-10+deb12u5",
    "gcc/bookworm",
    "libc6:amd64",
  ])("aptInstall accepts %j", (pkg) => {
    expect(() => Image.debianSlim().aptInstall([pkg])).not.toThrow();
  });

  test("empty package lists and command lists are rejected", () => {
    expect(invalid(() => Image.debianSlim().pipInstall([])).field).toBe("packages");
    expect(invalid(() => Image.debianSlim().aptInstall([])).field).toBe("packages");
    expect(invalid(() => Image.debianSlim().runCommands()).field).toBe("commands");
    expect(invalid(() => Image.debianSlim().runCommands("ok", "")).field).toBe("commands[1]");
    expect(invalid(() => Image.debianSlim().runCommands("echo \0")).field).toBe("commands[0]");
  });

  test("an unknown Python version names the accepted ones", () => {
    const err = invalid(() => Image.debianSlim("2.7"));
    expect(err.field).toBe("pythonVersion");
    expect(err.message).toContain("3.11");
    expect(err.message).toContain("3.13");
    expect(invalid(() => Image.debianSlim("3.11.4")).field).toBe("pythonVersion");
  });

  test("relative or malformed destinations are rejected", () => {
    expect(invalid(() => Image.debianSlim().addLocalFile("a.py", "app/a.py")).field).toBe("dest");
    expect(invalid(() => Image.debianSlim().addLocalFile("a.py", "/app/../etc/passwd")).field).toBe("dest");
    expect(invalid(() => Image.debianSlim().addLocalFile("a.py", "/")).field).toBe("dest");
    expect(invalid(() => Image.debianSlim().addLocalDir("d", "")).field).toBe("dest");
    expect(invalid(() => Image.debianSlim().addLocalFile("", "/a")).field).toBe("src");
    expect(invalid(() => Image.debianSlim().workdir("app")).field).toBe("path");
    expect(invalid(() => Image.debianSlim().addLocalFile("a", "/a", { mode: 0o10000 })).field).toBe(
      "options.mode",
    );
    expect(
      invalid(() => Image.debianSlim().addLocalFile("a", "/a", { strategy: "bake" as "copy" })).field,
    ).toBe("options.strategy");
  });

  test("bad environment names and values are rejected, naming the variable", () => {
    expect(invalid(() => Image.debianSlim().env({ "1X": "a" })).field).toBe("vars.1X");
    expect(invalid(() => Image.debianSlim().env({ "A-B": "a" })).field).toBe("vars.A-B");
    expect(invalid(() => Image.debianSlim().env({ A: "a\0b" })).field).toBe("vars.A");
    expect(invalid(() => Image.debianSlim().env({ A: 1 as unknown as string })).field).toBe("vars.A");
    expect(invalid(() => Image.debianSlim().env({})).field).toBe("vars");
  });

  test("entrypoints, references and index URLs are checked", () => {
    expect(invalid(() => Image.debianSlim().entrypoint([])).field).toBe("argv");
    expect(invalid(() => Image.debianSlim().entrypoint(["a", "b\0"])).field).toBe("argv[1]");
    expect(invalid(() => Image.fromRegistry("Python:3")).field).toBe("reference");
    expect(invalid(() => Image.fromRegistry("python:3 slim")).field).toBe("reference");
    expect(invalid(() => Image.fromRegistry("python@sha256:abc")).field).toBe("reference");
    expect(() => Image.fromRegistry("127.0.0.1:5000/team/app:v1")).not.toThrow();
    expect(() => Image.fromRegistry(`localhost/app@sha256:${"a".repeat(64)}`)).not.toThrow();
    expect(invalid(() => Image.debianSlim().pipInstall(["x"], { indexUrl: "ftp://x" })).field).toBe(
      "options.indexUrl",
    );
    const cred = invalid(() =>
      Image.debianSlim().pipInstall(["x"], { indexUrl: "https://u:p@example.org/simple" }),
    );
    expect(cred.field).toBe("options.indexUrl");
    expect(cred.message).not.toContain("u:p");
    expect(invalid(() => Image.debianSlim().pipInstall(["x"], { extraIndexUrls: ["nope"] })).field).toBe(
      "options.extraIndexUrls[0]",
    );
  });

  test("a received spec is validated with the field path of the bad value", () => {
    const spec = create(ImageSpecSchema, {
      base: { source: { case: "debianSlim", value: { pythonVersion: "3.11" } } },
      steps: [{ kind: { case: "pipInstall", value: { packages: ["ok", "--pre"] } } }],
    });
    const err = invalid(() => decodeImageSpec(encodeImageSpec(spec)));
    expect(err.field).toBe("spec.steps[0].pip_install.packages[1]");
    expect(invalid(() => decodeImageSpec(new Uint8Array([0xff, 0xff]))).field).toBe("spec");
    expect(invalid(() => canonicalSpec(create(ImageSpecSchema, {}))).field).toBe("spec.base");
  });
});

describe("a spec to build carries every file's bytes", () => {
  const hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
  const specOf = (files: { content: Uint8Array; sha256: string; sizeBytes: bigint }[]) =>
    create(ImageSpecSchema, {
      base: { source: { case: "debianSlim", value: { pythonVersion: "3.11" } } },
      steps: [
        { kind: { case: "env", value: { vars: [{ name: "A", value: "1" }] } } },
        {
          kind: {
            case: "addFiles",
            value: {
              files: files.map((f, i) => ({ path: `/app/f${i}`, kind: FileKind.REGULAR, mode: 0o644, ...f })),
            },
          },
        },
      ],
    });
  type Corruption = "drop" | "flip" | "grow" | "shrink" | "hash";
  const corrupt = (
    c: Uint8Array,
    how: Corruption,
  ): { content: Uint8Array; sizeBytes?: bigint; sha256?: string } => {
    switch (how) {
      case "drop":
        return { content: new Uint8Array() };
      case "flip": {
        const copy = new Uint8Array(c);
        copy[0] = (copy[0] ?? 0) ^ 1;
        return { content: copy };
      }
      case "grow":
        return { content: c, sizeBytes: BigInt(c.byteLength + 1) };
      case "shrink":
        return { content: c.subarray(1) };
      case "hash":
        return { content: c, sha256: hex(new Uint8Array([...c, 0])) };
    }
  };

  test("any file whose content is missing, of another size or another sha256 is refused naming it; whole files pass", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 64 }), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        fc.constantFrom<Corruption>("drop", "flip", "grow", "shrink", "hash"),
        (contents, pick, how) => {
          const whole = contents.map((content) => ({
            content,
            sha256: hex(content),
            sizeBytes: BigInt(content.byteLength),
          }));
          expect(() => decodeImageSpec(encodeImageSpec(specOf(whole)))).not.toThrow();
          const i = pick % whole.length;
          const bad = whole.map((f, j) => (j === i ? { ...f, ...corrupt(f.content, how) } : f));
          const err = invalid(() => decodeImageSpec(encodeImageSpec(specOf(bad))));
          expect(err.field).toBe(`spec.steps[1].add_files.files[${i}].content`);
          expect(invalid(() => canonicalSpec(specOf(bad), "spec", { requireContent: true })).field).toBe(
            err.field,
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  test("an empty file must hash as empty; a spec only to be hashed may leave contents out", async () => {
    const empty = new Uint8Array();
    expect(() =>
      canonicalSpec(specOf([{ content: empty, sha256: hex(empty), sizeBytes: 0n }]), "spec", {
        requireContent: true,
      }),
    ).not.toThrow();
    expect(
      invalid(() =>
        canonicalSpec(specOf([{ content: empty, sha256: sha("a"), sizeBytes: 0n }]), "spec", {
          requireContent: true,
        }),
      ).field,
    ).toBe("spec.steps[1].add_files.files[0].content");
    // Image.digest() hashes without reading contents: the same spec without bytes is fine to hash.
    const headless = specOf([{ content: empty, sha256: sha("a"), sizeBytes: 6n }]);
    expect(specDigest(canonicalSpec(headless))).toMatch(/^sha256:[a-f0-9]{64}$/);
  });
});

describe("toDockerfile", () => {
  test("renders every step as the equivalent instruction, quoting what needs it", () => {
    const image = Image.debianSlim("3.12")
      .aptInstall(["curl", "git"])
      .pipInstall(["requests>=2", "flask"], { extraIndexUrls: ["https://example.org/simple"] })
      .runCommands("echo hi > /greeting", "printf 'a\\nb'\necho two")
      .env({ GREETING: "hello $USER", MODE: "prod" })
      .workdir("/app")
      .addLocalFile("/src/main.py", "/app/main.py", { strategy: "copy", mode: 0o755 })
      .addLocalDir("/src/static dir", "/app/static", { strategy: "copy" })
      .addLocalFile("/src/config.json", "/app/config.json")
      .entrypoint(["python", "main.py"]);
    expect(image.toDockerfile()).toBe(
      [
        "FROM python:3.12-slim",
        "RUN apt-get update && apt-get install -y --no-install-recommends -- curl git && rm -rf /var/lib/apt/lists/*",
        "RUN pip install --no-cache-dir --disable-pip-version-check --no-input --extra-index-url https://example.org/simple -- 'requests>=2' flask",
        "RUN echo hi > /greeting",
        'RUN ["/bin/sh","-c","printf \'a\\\\nb\'\\necho two"]',
        'ENV GREETING="hello \\$USER" MODE="prod"',
        "WORKDIR /app",
        "COPY --chmod=0755 /src/main.py /app/main.py",
        'COPY ["/src/static dir/","/app/static/"]',
        "# volume: /src/config.json -> /app/config.json (uploaded to a temporary volume mounted at start; not in the image)",
        'ENTRYPOINT ["python","main.py"]',
        "",
      ].join("\n"),
    );
  });

  test("a registry base is its reference", () => {
    expect(Image.fromRegistry("127.0.0.1:5000/team/app:v1").toDockerfile()).toBe(
      "FROM 127.0.0.1:5000/team/app:v1\n",
    );
  });
});
