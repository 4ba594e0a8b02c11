/**
 * fast-check arbitraries for any protobuf message, built from its descriptor: every field kind (scalars,
 * enums, nested messages, repeated, maps, oneofs), values biased towards the edges (0, negatives, int64
 * extremes, empty, huge and non-ASCII strings, strings that look like this service's inputs), and byte-level
 * mutations of an encoded message.
 */
import {
  create,
  type DescField,
  type DescMessage,
  type Message,
  ScalarType,
  toBinary,
} from "@bufbuild/protobuf";
import fc from "fast-check";

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** Strings this service parses: webhook URLs, auth types, statuses, event types, ids, cursors. */
const domainStrings = fc.constantFrom(
  "https://127.0.0.1:9/flow/api/trigger-webhook/abcdefgh12345678",
  "https://127.0.0.1:9/open-apis/bot/v2/hook/0123456789abcdef",
  "https://www.feishu.cn/flow/api/trigger-webhook/abcdefgh12345678",
  "http://www.feishu.cn/flow/api/trigger-webhook/x",
  "https://user:pw@open.feishu.cn/open-apis/bot/v2/hook/x?y#z",
  "bearer",
  "BEARER",
  "none",
  "notification.feishu.requested",
  "unfinished_feedback",
  "manual",
  "/assistant/conv_1",
  "RECORD_STATUS_FAILED",
  "dead",
  "eyJpZCI6MX0",
  "0",
  "-1",
  " ",
);

const text = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: domainStrings },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ minLength: 200, maxLength: 5_000 }) },
  {
    weight: 1,
    arbitrary: domainStrings.chain((s) => fc.nat(s.length).map((n) => `${s.slice(0, n)}é😀\u0000`)),
  },
);

function int64(unsigned: boolean) {
  return fc.oneof(
    { weight: 4, arbitrary: fc.bigInt({ min: unsigned ? 0n : -3n, max: 60n }) },
    {
      weight: 2,
      arbitrary: fc.bigInt({ min: unsigned ? 0n : INT64_MIN, max: unsigned ? UINT64_MAX : INT64_MAX }),
    },
    { weight: 1, arbitrary: fc.constantFrom(...(unsigned ? [0n, UINT64_MAX] : [INT64_MIN, INT64_MAX, -1n])) },
  );
}

const int32 = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -3, max: 600 }) },
  { weight: 1, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) },
);
const uint32 = fc.oneof(fc.integer({ min: 0, max: 600 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }));

function scalar(type: ScalarType): fc.Arbitrary<unknown> {
  switch (type) {
    case ScalarType.STRING:
      return text;
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 64 });
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.DOUBLE:
      return fc.double();
    case ScalarType.FLOAT:
      return fc.float();
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return int64(false);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return int64(true);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return uint32;
    default:
      return int32;
  }
}

function enumValue(field: { enum: { values: readonly { number: number }[] } }) {
  return fc.oneof(
    fc.constantFrom(...field.enum.values.map((v) => v.number)),
    fc.integer({ min: -2, max: 99 }),
  );
}

function single(field: DescField, depth: number): fc.Arbitrary<unknown> {
  switch (field.fieldKind) {
    case "scalar":
      return scalar(field.scalar);
    case "enum":
      return enumValue(field);
    case "message":
      return messageInit(field.message, depth + 1);
    case "list": {
      const element =
        field.listKind === "scalar"
          ? scalar(field.scalar)
          : field.listKind === "enum"
            ? enumValue(field)
            : messageInit(field.message, depth + 1);
      return fc.array(element, { maxLength: depth > 1 ? 2 : 8 });
    }
    case "map": {
      const value =
        field.mapKind === "scalar"
          ? scalar(field.scalar)
          : field.mapKind === "enum"
            ? enumValue(field)
            : messageInit(field.message, depth + 1);
      return fc.dictionary(fc.string({ maxLength: 10 }), value, { maxKeys: 4 });
    }
  }
}

/** The init object of a message: any subset of its fields, one case (or none) per oneof. */
export function messageInit(desc: DescMessage, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  if (depth > 3) return fc.constant({});
  const plain: Record<string, fc.Arbitrary<unknown>> = {};
  for (const field of desc.fields) if (!field.oneof) plain[field.localName] = single(field, depth);
  const oneofs: Record<string, fc.Arbitrary<unknown>> = {};
  for (const oneof of desc.oneofs) {
    oneofs[oneof.localName] = fc.oneof(
      fc.constant({ case: undefined }),
      ...oneof.fields.map((field) => single(field, depth).map((value) => ({ case: field.localName, value }))),
    );
  }
  return fc.record({ ...plain, ...oneofs }, { requiredKeys: [] });
}

/** A valid encoding of a random message of this type. */
export function encodedMessage(desc: DescMessage): fc.Arbitrary<Uint8Array> {
  return messageInit(desc).map((init) => toBinary(desc, create(desc, init as never) as Message));
}

/** A valid encoding, then up to five byte-level mutations (flip, insert, delete, truncate). */
export function mutatedMessage(desc: DescMessage): fc.Arbitrary<Uint8Array> {
  const mutation = fc.record({
    kind: fc.constantFrom("flip", "insert", "delete", "truncate"),
    at: fc.nat(),
    byte: fc.integer({ min: 0, max: 255 }),
  });
  return fc
    .tuple(encodedMessage(desc), fc.array(mutation, { minLength: 1, maxLength: 5 }))
    .map(([bytes, edits]) => {
      let out = Array.from(bytes);
      for (const { kind, at, byte } of edits) {
        const i = out.length === 0 ? 0 : at % (out.length + 1);
        if (kind === "flip" && out.length > 0) out[i % out.length] = byte;
        else if (kind === "insert") out.splice(i, 0, byte);
        else if (kind === "delete") out.splice(i, 1);
        else out = out.slice(0, i);
      }
      return Uint8Array.from(out);
    });
}
