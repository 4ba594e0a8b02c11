import assert from "node:assert/strict";
import { test } from "node:test";
import { INT64_MAX, parseJsonObject, readInt64, stringifyJson } from "../../src/lib/json-int64.ts";

const int = (text: string, key = "id") => readInt64(parseJsonObject(text), key);
const refused = (text: string, message: RegExp, key = "id") =>
  assert.throws(() => int(text, key), message, text);

test("readInt64: the exact literal at the edges of 32, 53 and 64 bits", () => {
  for (const value of [
    0n,
    1n,
    -1n,
    2n ** 31n - 1n,
    2n ** 31n,
    5_000_000_000n,
    2n ** 53n - 1n,
    2n ** 53n,
    2n ** 53n + 1n,
    INT64_MAX - 1n,
    INT64_MAX,
    -(2n ** 63n),
  ]) {
    assert.equal(int(`{"id":${value}}`), value, String(value));
    assert.equal(int(`{ "id" : ${value} , "x": 1 }`), value, String(value));
  }
  // JSON.parse alone gets 2^53 + 1 wrong; the literal is what counts.
  assert.equal(JSON.parse('{"id":9007199254740993}').id, 9007199254740992);
  assert.equal(int('{"id":9007199254740993}'), 9007199254740993n);
});

test("readInt64: past 64 bits, fractions, exponents and non-numbers are refused (as Go's int64)", () => {
  refused(`{"id":${2n ** 63n}}`, /64-bit/);
  refused(`{"id":${-(2n ** 63n) - 1n}}`, /64-bit/);
  refused('{"id":99999999999999999999999}', /64-bit/);
  for (const literal of ["1.5", "1.0", "2.0", "1e3", "1E3", "9.223372036854775807e18", "-0.0", "1e400"]) {
    refused(`{"id":${literal}}`, /must be an integer/);
  }
  // A fraction JSON.parse rounds onto a safe integer is still a fraction.
  refused('{"id":9007199254740990.5}', /must be an integer/);
  for (const literal of ['"42"', "true", "[1]", '{"id":1}'])
    refused(`{"id":${literal}}`, /must be an integer/);
});

test("readInt64: missing and null are undefined (Go's zero value)", () => {
  assert.equal(int("{}"), undefined);
  assert.equal(int('{"id":null}'), undefined);
  assert.equal(int('{"other":5}'), undefined);
});

test("readInt64: the last duplicate key wins, as in JSON.parse and Go", () => {
  assert.equal(int('{"id":1,"id":9223372036854775807}'), INT64_MAX);
  assert.equal(int('{"id":9223372036854775807,"id":2}'), 2n);
  assert.equal(int('{"id":9223372036854775807,"id":null}'), undefined);
  refused('{"id":5,"id":1.5}', /must be an integer/);
});

test("readInt64: nested objects with the same key names and strings holding digits do not confuse it", () => {
  const text = JSON.stringify({
    nested: { id: 1, deeper: [{ id: 2 }, "id", '"id":3'] },
    note: 'say "id":4, {id:5} and \\"id\\":6',
    list: [[], {}, [{}], "]", "}", "{"],
  }).replace(/}$/, ',"id":9007199254740993}');
  assert.equal(int(text), 9007199254740993n);
  assert.equal(int('{"text":"9223372036854775807","id":7}'), 7n);
  // Escapes in keys are decoded: "user\u005fid" is user_id.
  assert.equal(int('{"user\\u005fid":9007199254740993}', "user_id"), 9007199254740993n);
  // Strings that end in an escaped backslash, or hold escaped quotes, in values and in keys.
  assert.equal(int('{"a":"ends with \\\\","id":5}'), 5n);
  assert.equal(int('{"a":"say \\"id\\":1\\\\","b\\"c":[" \\\\\\" ]"],"id":6}'), 6n);
  // Whitespace of every JSON kind around the members.
  assert.equal(int(' \n\t{\r\n "a" :\t"x" ,\n "id"\n:\n-42\n}\n'), -42n);
});

test("parseJsonObject: raw keeps each member's exact text", () => {
  const text = '{"a":{"b":[1, 2.50]},"payload":{"user_id":9223372036854775807,"s":"\\u00e9"},"n":1e3}';
  const object = parseJsonObject(text);
  assert.equal(object.raw("a"), '{"b":[1, 2.50]}');
  assert.equal(object.raw("payload"), '{"user_id":9223372036854775807,"s":"\\u00e9"}');
  assert.equal(object.raw("n"), "1e3");
  assert.equal(object.raw("missing"), undefined);
  assert.throws(() => parseJsonObject("[1]"), TypeError);
  assert.throws(() => parseJsonObject("42"), TypeError);
  assert.throws(() => parseJsonObject("{"), SyntaxError);
});

test("stringifyJson: bigint as JSON numbers, everything else as JSON.stringify", () => {
  assert.equal(
    stringifyJson({ user_id: INT64_MAX, target_id: 2n ** 53n + 1n, neg: -5n, n: 1 }),
    '{"user_id":9223372036854775807,"target_id":9007199254740993,"neg":-5,"n":1}',
  );
  const samples: unknown[] = [
    { a: 'x\u2028"\\', b: [1, undefined, () => 1, null], c: undefined, d: Number.NaN, e: -0, f: 1e21 },
    { when: new Date(0), nested: { deep: [true, false, { x: "é" }] } },
    [],
    {},
    "text",
    3.5,
    null,
  ];
  for (const sample of samples) assert.equal(stringifyJson(sample), JSON.stringify(sample));
  assert.equal(stringifyJson(undefined), "null");
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => stringifyJson(cyclic), TypeError);
  // A value seen twice (not a cycle) is written twice.
  const shared = { id: 1n };
  assert.equal(stringifyJson({ a: shared, b: shared }), '{"a":{"id":1},"b":{"id":1}}');
  // Round trip: what it writes, readInt64 reads back exactly.
  assert.equal(int(stringifyJson({ id: INT64_MAX })), INT64_MAX);
});
