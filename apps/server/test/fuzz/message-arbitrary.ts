/**
 * fast-check arbitraries of hostile protobuf messages, derived from protobuf-es descriptors alone, so
 * a new RPC or field is covered without touching this file: every scalar at its edges (negative,
 * huge, NaN, unknown enum numbers), strings with NUL, odd unicode, `..` and absolute paths, oversized
 * strings, bytes and lists, oneofs set or missing, nested messages a few levels deep. A few field
 * names get values the server accepts (an image it serves, a Python version it builds), so that
 * generated requests also get past the first check and reach deeper code.
 */
import {
  create,
  type DescField,
  type DescMessage,
  type MessageInitShape,
  ScalarType,
  toBinary,
} from "@bufbuild/protobuf";
import fc from "fast-check";

/** Strings that have broken servers before: paths, encodings, separators, injections, edges. */
export const HOSTILE_STRINGS = [
  "",
  " ",
  ".",
  "..",
  "../../etc",
  "../../../../../../etc/passwd",
  "/",
  "/etc/shadow",
  "/proc/self/environ",
  "/var/lib/chalk/secrets.db.key",
  "a/../../b",
  "./x",
  "x/./y",
  "\0",
  "a\0b",
  "name\0",
  "ïmage",
  "ЖЖЖ",
  "🚀",
  "\u202e\u0041",
  "\ufeffname",
  "\uffff",
  "\ud800",
  "\r\n",
  "line\nbreak",
  "\t",
  " 1Gi",
  "1Gi ",
  "-1",
  "0",
  "1e309",
  "NaN",
  "999999999999999999999999",
  "%s%n%x",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal shell expansion, sent as it is.
  "${HOME}",
  "$(id)",
  "`id`",
  "; rm -rf /",
  "*",
  "?",
  "C:\\Windows",
  "\\\\server\\share",
  "file:///etc/passwd",
  "127.0.0.1:22/x:y",
  "[::1]:5000/internal/admin:latest",
  "a".repeat(64),
  "a".repeat(300),
];

/**
 * Values the test server accepts for some fields, so requests get past the first check: by field
 * name, or by full name (`chalk.container.v1.ContainerSpec.name`) where one name has several rules.
 */
const ACCEPTED_BY_FIELD: Record<string, string[]> = {
  // Container names are DNS labels: a new one and the test's running container.
  "chalk.container.v1.ContainerSpec.name": ["fuzz-c", "fuzz-a"],
  uri: ["minbase"],
  image: ["minbase"],
  reference: ["minbase", "python:3.12-slim"],
  python_version: ["3.11", "3.12"],
  name: ["fuzz-a", "fuzz-b", "FUZZ_A", "a"],
  volume_name: ["fuzz-a"],
  id: ["fuzz-a"],
  sandbox_id: ["fuzz-a"],
  memory: ["256Mi", "1Gi"],
  cpu: ["1", "500m"],
  gpu: ["nvidia-l4:1", "2"],
  path: ["/data", "/app/file.txt", "data/x.txt", "dir/"],
  mount_path: ["/data"],
  workdir: ["/tmp", "/"],
  source: ["x.txt"],
  target: ["/data/x"],
  prefix: ["", "a/"],
  command: ["true", "echo", "sh"],
  argv: ["true", "echo"],
  entrypoint: ["sleep", "1000"],
  // Never a real package: a build that reached the network would take minutes per case.
  packages: ["--index-url=http://127.0.0.1:1/", "-r/etc/passwd", "pkg; rm -rf /", "../x"],
  index_url: ["http://127.0.0.1:1/simple", "file:///etc"],
  commands: ["true", "exit 3"],
  digest: ["sha256:" + "0".repeat(64)],
  page_token: ["MTAwMDAwMDAwMDAwMDAwMDAwMDAw", "LTE", "not a token", "AAAA"],
  signal: ["SIGTERM", "SIGKILL", "9"],
};

/** A hostile string: one from the list above, random text, or an oversized one. */
const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 40, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 30, arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }) },
  { weight: 20, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  // Oversized: past every string limit (64 KiB), and past 1 MiB.
  { weight: 2, arbitrary: fc.constantFrom(70_000, 1_100_000).map((n) => "x".repeat(n)) },
);

/**
 * Adds values the server accepts for fields named `field` (ids of objects the test made), before
 * any arbitrary is built.
 */
export function acceptValues(field: string, values: readonly string[]): void {
  ACCEPTED_BY_FIELD[field] = [...(ACCEPTED_BY_FIELD[field] ?? []), ...values];
}

/** A string the server may well accept for `field`. */
function plainString(field: DescField): fc.Arbitrary<string> {
  const accepted =
    ACCEPTED_BY_FIELD[`${field.parent.typeName}.${field.name}`] ?? ACCEPTED_BY_FIELD[field.name];
  return accepted ? fc.constantFrom(...accepted) : fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/);
}

const INT32_EDGES = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 255, 65_536];
const UINT32_EDGES = [0, 1, 2 ** 32 - 1, 2 ** 31, 0o644, 0o4755, 65_535, 65_536];
const INT64_EDGES = [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n];
const UINT64_EDGES = [0n, 1n, 2n ** 64n - 1n, 2n ** 63n, 2n ** 53n + 1n];
const DOUBLE_EDGES = [0, -0, -1, 0.5, 1e308, -1e308, 86_401, Number.NaN, Infinity, -Infinity, 5e-324];

const is64 = (t: ScalarType) =>
  t === ScalarType.INT64 ||
  t === ScalarType.SINT64 ||
  t === ScalarType.SFIXED64 ||
  t === ScalarType.UINT64 ||
  t === ScalarType.FIXED64;

/** A hostile value of a scalar type: its edges and random values over its whole range. */
function hostileScalar(type: ScalarType): fc.Arbitrary<unknown> {
  switch (type) {
    case ScalarType.STRING:
      return hostileString;
    case ScalarType.BYTES:
      return fc.oneof(
        { weight: 40, arbitrary: fc.uint8Array({ maxLength: 64 }) },
        // Oversized: 5 MiB (over the exec stdin limit) and 9 MiB (over the message limit).
        {
          weight: 1,
          arbitrary: fc.constantFrom(5 * 1024 * 1024, 9 * 1024 * 1024).map((n) => new Uint8Array(n)),
        },
      );
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return fc.oneof(fc.constantFrom(...INT32_EDGES), fc.integer());
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.oneof(fc.constantFrom(...UINT32_EDGES), fc.nat({ max: 2 ** 32 - 1 }));
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return fc.oneof(fc.constantFrom(...INT64_EDGES), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }));
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return fc.oneof(fc.constantFrom(...UINT64_EDGES), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return fc.oneof(fc.constantFrom(...DOUBLE_EDGES), fc.double());
  }
}

/** An ordinary value of a scalar type: small non-negative numbers, short plain strings. */
function plainScalar(type: ScalarType, field: DescField): fc.Arbitrary<unknown> {
  const name = field.name;
  if (type === ScalarType.STRING) return plainString(field);
  if (type === ScalarType.BYTES) return fc.uint8Array({ maxLength: 32 });
  if (type === ScalarType.BOOL) return fc.boolean();
  if (type === ScalarType.DOUBLE || type === ScalarType.FLOAT) return fc.integer({ min: 0, max: 30 });
  if (name === "port") return fc.constantFrom(8080, 80);
  if (name === "mode") return fc.constantFrom(0o644, 0o755);
  return is64(type) ? fc.bigInt({ min: 0n, max: 100n }) : fc.integer({ min: 0, max: 100 });
}

/** The smallest valid element of a list field, to fill oversized lists with. */
function smallElement(field: DescField & { fieldKind: "list" }): unknown {
  if (field.listKind === "enum") return 1;
  if (field.listKind === "message") return {};
  if (field.scalar === ScalarType.STRING) return "a";
  if (field.scalar === ScalarType.BYTES) return new Uint8Array(1);
  if (field.scalar === ScalarType.BOOL) return true;
  return is64(field.scalar) ? 1n : 1;
}

/** Bytes fields that carry an encoded message of their own: fuzz the message inside too. */
const EMBEDDED: Record<string, () => DescMessage> = {};

/** Declares that bytes field `fieldName` (full name, `pkg.Message.field`) holds an encoded `schema`. */
export function embedMessage(fieldName: string, schema: () => DescMessage): void {
  EMBEDDED[fieldName] = schema;
}

/**
 * The arbitraries of one hostility: each leaf value is hostile with probability `hostility`, else
 * ordinary. Low hostility gets requests past the first checks with one or two bad values in them;
 * full hostility makes every value bad.
 */
class Generator {
  readonly #cache = new Map<string, fc.Arbitrary<MessageInitShape<DescMessage>>>();

  constructor(readonly hostility: number) {}

  #mix(hostile: fc.Arbitrary<unknown>, plain: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
    if (this.hostility >= 1) return hostile;
    const h = Math.max(1, Math.round(this.hostility * 100));
    return fc.oneof({ weight: h, arbitrary: hostile }, { weight: 100 - h, arbitrary: plain });
  }

  #scalar(field: DescField, type: ScalarType, depth: number): fc.Arbitrary<unknown> {
    const embedded = EMBEDDED[`${field.parent.typeName}.${field.name}`];
    if (type === ScalarType.BYTES && embedded && depth > 0) {
      return fc.oneof(hostileScalar(type), this.bytes(embedded(), depth - 1));
    }
    return this.#mix(hostileScalar(type), plainScalar(type, field));
  }

  #enum(values: readonly number[]): fc.Arbitrary<unknown> {
    const hostile = fc.oneof(fc.integer({ min: -2, max: 12 }), fc.constantFrom(2 ** 31 - 1, -(2 ** 31)));
    return this.#mix(hostile, fc.constantFrom(...(values.length > 0 ? values : [0])));
  }

  #single(field: DescField, depth: number): fc.Arbitrary<unknown> {
    if (field.fieldKind === "scalar") return this.#scalar(field, field.scalar, depth);
    if (field.fieldKind === "enum") return this.#enum(field.enum.values.map((v) => v.number));
    if (field.fieldKind === "message") return this.init(field.message, depth - 1);
    throw new Error(`unexpected field kind ${field.fieldKind}`);
  }

  #element(field: DescField & { fieldKind: "list" }, depth: number): fc.Arbitrary<unknown> {
    if (field.listKind === "scalar") return this.#scalar(field, field.scalar, depth);
    if (field.listKind === "enum") return this.#enum(field.enum.values.map((v) => v.number));
    return this.init(field.message, depth - 1);
  }

  #value(field: DescField, depth: number): fc.Arbitrary<unknown> {
    switch (field.fieldKind) {
      case "list": {
        const one = this.#element(field, depth);
        const oversized = fc
          .constantFrom(1_001, 20_000)
          .map((n) => Array(n).fill(smallElement(field)) as unknown[]);
        return this.#mix(
          fc.oneof(
            { weight: 12, arbitrary: fc.array(one, { maxLength: 4 }) },
            { weight: 1, arbitrary: oversized },
          ),
          fc.array(one, { minLength: 1, maxLength: 3 }),
        );
      }
      case "map": {
        const value =
          field.mapKind === "scalar"
            ? this.#scalar(field, field.scalar, depth)
            : field.mapKind === "enum"
              ? this.#enum(field.enum.values.map((v) => v.number))
              : this.init(field.message, depth - 1);
        const key =
          field.mapKey === ScalarType.STRING
            ? (this.#mix(hostileString, fc.stringMatching(/^[A-Z][A-Z0-9_]{0,8}$/)) as fc.Arbitrary<string>)
            : fc.integer().map(String);
        return fc.dictionary(key, value, { maxKeys: 4 });
      }
      default:
        return this.#single(field, depth);
    }
  }

  /**
   * An init shape of `schema` (for `create(schema, init)`): each field set or left unset, each oneof
   * set to one of its cases or to none, nested messages down to `depth` levels.
   */
  init(schema: DescMessage, depth: number): fc.Arbitrary<MessageInitShape<DescMessage>> {
    const key = `${schema.typeName}@${depth}`;
    const hit = this.#cache.get(key);
    if (hit) return hit;
    if (depth <= 0) return fc.constant({});
    const parts: Record<string, fc.Arbitrary<unknown>> = {};
    for (const field of schema.fields) {
      if (field.oneof) continue;
      const value = fc.option(this.#value(field, depth), { nil: undefined, freq: 3 });
      // A deprecated field is refused by design (a host path): nearly valid requests leave it unset
      // so that they reach past that check; hostile ones still set it.
      parts[field.localName] = field.deprecated ? this.#mix(value, fc.constant(undefined)) : value;
    }
    for (const oneof of schema.oneofs) {
      parts[oneof.localName] = fc.oneof(
        { weight: this.hostility >= 1 ? 1 : 0, arbitrary: fc.constant(undefined) },
        ...oneof.fields.map((f) => ({
          weight: 2,
          arbitrary: this.#value(f, depth).map((value) => ({ case: f.localName, value })),
        })),
      );
    }
    const arb = fc.record(parts).map((r) => {
      const init: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(r)) if (v !== undefined) init[k] = v;
      return init as MessageInitShape<DescMessage>;
    });
    this.#cache.set(key, arb);
    return arb;
  }

  bytes(schema: DescMessage, depth: number): fc.Arbitrary<Uint8Array> {
    return this.init(schema, depth).map((init) => toBinary(schema, create(schema, init)));
  }
}

/** Generators from nearly valid (one value in 30 hostile) to wholly hostile. */
const generators = [0.03, 0.15, 1].map((h) => new Generator(h));

/** A hostile init shape of `schema`, at any hostility. */
export function messageInit(schema: DescMessage, depth = 4): fc.Arbitrary<MessageInitShape<DescMessage>> {
  return fc.constantFrom(...generators).chain((g) => g.init(schema, depth));
}

/** The binary encoding of a hostile message of `schema`, at any hostility. */
export function messageBytes(schema: DescMessage, depth = 4): fc.Arbitrary<Uint8Array> {
  return fc.constantFrom(...generators).chain((g) => g.bytes(schema, depth));
}
