/**
 * fast-check arbitraries of malformed protobuf bodies for a message type: random bytes, valid
 * encodings cut short or flipped, declared fields sent with the wrong wire type, lengths that run
 * past the end, field number 0, invalid wire types, and groups nested past any recursion limit.
 */
import { type DescMessage, ScalarType } from "@bufbuild/protobuf";
import fc from "fast-check";
import { messageBytes } from "./message-arbitrary.js";

function varint(value: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
}

const tag = (field: number, wireType: number) => varint((BigInt(field) << 3n) | BigInt(wireType));

/** The wire type a field's values are encoded with. */
function expectedWireType(schema: DescMessage, number: number): number | undefined {
  const f = schema.fields.find((x) => x.number === number);
  if (!f) return undefined;
  if (f.fieldKind === "message" || f.fieldKind === "map" || f.fieldKind === "list") return 2;
  if (f.fieldKind === "enum") return 0;
  switch (f.scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return 2;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return 1;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return 5;
    default:
      return 0;
  }
}

/** A payload that is well-formed for `wireType` (so only the type is wrong). */
function payload(wireType: number): fc.Arbitrary<number[]> {
  switch (wireType) {
    case 0:
      return fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(varint);
    case 1:
      return fc.array(fc.nat({ max: 255 }), { minLength: 8, maxLength: 8 });
    case 5:
      return fc.array(fc.nat({ max: 255 }), { minLength: 4, maxLength: 4 });
    case 2:
      return fc
        .array(fc.nat({ max: 255 }), { maxLength: 16 })
        .map((b) => [...varint(BigInt(b.length)), ...b]);
    default:
      return fc.constant([]);
  }
}

/** A declared field sent with a wire type other than its own (or an invalid one: 6, 7). */
function wrongWireType(schema: DescMessage): fc.Arbitrary<Uint8Array> {
  const numbers = schema.fields.map((f) => f.number);
  if (numbers.length === 0) return fc.constant(new Uint8Array(tag(1, 6)));
  return fc
    .tuple(fc.constantFrom(...numbers), fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7))
    .filter(([n, wt]) => wt !== expectedWireType(schema, n))
    .chain(([n, wt]) => payload(wt).map((p) => new Uint8Array([...tag(n, wt), ...p])));
}

/** A length-delimited field whose length runs past the end of the body (up to 2^63). */
function lengthBomb(schema: DescMessage): fc.Arbitrary<Uint8Array> {
  const numbers = schema.fields.filter((f) => expectedWireType(schema, f.number) === 2).map((f) => f.number);
  return fc
    .tuple(
      fc.constantFrom(...(numbers.length > 0 ? numbers : [1])),
      fc.constantFrom(17n, 2n ** 31n, 2n ** 32n + 1n, 2n ** 63n),
    )
    .map(([n, len]) => new Uint8Array([...tag(n, 2), ...varint(len), 0x41, 0x41]));
}

/** Start-group tags nested deeper than any parser's recursion limit, never closed. */
const deepGroups = fc
  .constantFrom(101, 5_000)
  .map((depth) => new Uint8Array(Array.from({ length: depth }, () => tag(15, 3)).flat()));

/** An unknown field with the largest field number, or the forbidden field number 0. */
const oddFieldNumbers = fc.constantFrom(
  new Uint8Array([...tag(536_870_911, 0), 1]),
  new Uint8Array([...tag(0, 0), 1]),
  new Uint8Array([...tag(0, 2), 0]),
);

/** A valid encoding, then cut short, with a byte flipped, or with garbage appended. */
function mutated(schema: DescMessage): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(
      messageBytes(schema, 2),
      fc.nat(),
      fc.nat({ max: 255 }),
      fc.uint8Array({ minLength: 1, maxLength: 8 }),
    )
    .chain(([bytes, at, byte, tail]) =>
      fc.constantFrom(
        bytes.subarray(0, bytes.length > 0 ? at % bytes.length : 0),
        (() => {
          const copy = Uint8Array.from(bytes);
          const i = at % Math.max(copy.length, 1);
          if (copy.length > 0) copy[i] = (copy[i] ?? 0) ^ (byte || 0x80);
          return copy;
        })(),
        new Uint8Array(Buffer.concat([bytes, tail])),
      ),
    );
}

/** Malformed bodies for `schema`, of every kind above. */
export function malformedBytes(schema: DescMessage): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 200 }),
    mutated(schema),
    wrongWireType(schema),
    lengthBomb(schema),
    deepGroups,
    oddFieldNumbers,
  );
}
