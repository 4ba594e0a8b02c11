/**
 * JSON with 64-bit integers. SmartFlow's Go services write `user_id`, `target_id` and `notification_id` as
 * JSON numbers (Go's int64), which can exceed what a JavaScript number holds exactly (2^53 − 1), and Node 20's
 * `JSON.parse` cannot show a value's source text. So an object is parsed with `JSON.parse`, and an integer
 * member is read from its exact literal, found by a small scanner over the top level of the already-valid
 * text; `stringifyJson` writes `bigint` values as JSON numbers.
 */

export const INT64_MAX = 2n ** 63n - 1n;
export const INT64_MIN = -(2n ** 63n);

/** A JSON object, as `JSON.parse` reads it, with the exact source text of its top-level members. */
export interface JsonObjectText {
  readonly value: Readonly<Record<string, unknown>>;
  /** The source text of a top-level member's value; when the key repeats, the last one (as `JSON.parse`). */
  raw(key: string): string | undefined;
}

/** Throws a SyntaxError when `text` is not JSON, a TypeError when it is not an object. */
export function parseJsonObject(text: string): JsonObjectText {
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError("not a JSON object");
  }
  let members: Map<string, string> | undefined;
  return {
    value: value as Record<string, unknown>,
    raw(key) {
      members ??= topLevelMembers(text);
      return members.get(key);
    },
  };
}

/**
 * A top-level member as a 64-bit integer, read as Go's encoding/json reads an int64: the literal must be an
 * integer (no fraction, no exponent) between −2^63 and 2^63 − 1. Returns undefined when the member is
 * missing or null (Go leaves the zero value); throws a RangeError saying what is wrong otherwise.
 */
export function readInt64(object: JsonObjectText, key: string): bigint | undefined {
  const value = object.value[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number") throw new RangeError("must be an integer");
  const literal = object.raw(key) ?? "";
  if (!/^-?(0|[1-9][0-9]*)$/.test(literal)) throw new RangeError("must be an integer");
  const parsed = BigInt(literal);
  if (parsed < INT64_MIN || parsed > INT64_MAX) throw new RangeError("must be a 64-bit integer");
  return parsed;
}

/**
 * `JSON.stringify(value)` that writes a `bigint` as a JSON number (its exact digits). Otherwise the same
 * rules: `toJSON` is called, non-finite numbers are null, undefined and functions are left out of objects
 * and written as null in arrays and at the top level; a cycle is a TypeError.
 */
export function stringifyJson(value: unknown): string {
  const out: string[] = [];
  if (!write(value, out, new Set())) out.push("null");
  return out.join("");
}

function write(input: unknown, out: string[], ancestors: Set<object>): boolean {
  let value = input;
  if (
    value !== null &&
    typeof value === "object" &&
    typeof (value as { toJSON?: unknown }).toJSON === "function"
  ) {
    value = (value as { toJSON(): unknown }).toJSON();
  }
  switch (typeof value) {
    case "bigint":
      out.push(value.toString());
      return true;
    case "string":
      out.push(JSON.stringify(value));
      return true;
    case "number":
      out.push(Number.isFinite(value) ? String(value) : "null");
      return true;
    case "boolean":
      out.push(value ? "true" : "false");
      return true;
    case "object":
      if (value === null) {
        out.push("null");
        return true;
      }
      if (ancestors.has(value)) throw new TypeError("cannot write a cyclic structure as JSON");
      ancestors.add(value);
      if (Array.isArray(value)) writeArray(value, out, ancestors);
      else writeObject(value as Record<string, unknown>, out, ancestors);
      ancestors.delete(value);
      return true;
    default:
      return false;
  }
}

function writeArray(items: readonly unknown[], out: string[], ancestors: Set<object>) {
  out.push("[");
  items.forEach((item, index) => {
    if (index > 0) out.push(",");
    if (!write(item, out, ancestors)) out.push("null");
  });
  out.push("]");
}

function writeObject(object: Record<string, unknown>, out: string[], ancestors: Set<object>) {
  out.push("{");
  let first = true;
  for (const key of Object.keys(object)) {
    const mark = out.length;
    out.push(first ? "" : ",", JSON.stringify(key), ":");
    if (write(object[key], out, ancestors)) first = false;
    else out.length = mark;
  }
  out.push("}");
}

/**
 * The source text of each top-level member's value (`text` is valid JSON whose top level is an object, as
 * `JSON.parse` has just checked). Keys are decoded (`"user\u005fid"` is `user_id`); a later duplicate
 * replaces an earlier one. Nested values are skipped over, strings with their escapes. (Character codes and
 * `indexOf`, not per-character strings: this runs for every payload and envelope.)
 */
function topLevelMembers(text: string): Map<string, string> {
  const members = new Map<string, string>();
  let at = skipSpace(text, skipSpace(text, 0) + 1);
  while (text.charCodeAt(at) === QUOTE) {
    const keyEnd = endOfString(text, at);
    const rawKey = text.slice(at + 1, keyEnd - 1);
    const key = rawKey.includes("\\") ? (JSON.parse(`"${rawKey}"`) as string) : rawKey;
    const valueStart = skipSpace(text, skipSpace(text, keyEnd) + 1);
    const valueEnd = endOfValue(text, valueStart);
    members.set(key, text.slice(valueStart, valueEnd));
    at = skipSpace(text, valueEnd);
    if (text.charCodeAt(at) === COMMA) at = skipSpace(text, at + 1);
  }
  return members;
}

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13;

function skipSpace(text: string, from: number): number {
  let at = from;
  while (isSpace(text.charCodeAt(at))) at++;
  return at;
}

/** `from` is at an opening quote; returns the index just past the closing one (not preceded by an odd run of backslashes). */
function endOfString(text: string, from: number): number {
  let at = from + 1;
  for (;;) {
    const quote = text.indexOf('"', at);
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    at = quote + 1;
  }
}

function endOfValue(text: string, from: number): number {
  const first = text.charCodeAt(from);
  if (first === QUOTE) return endOfString(text, from);
  if (first === 123 || first === 91) {
    // { or [: count nesting, skipping over strings.
    let depth = 0;
    for (let at = from; ; at++) {
      const c = text.charCodeAt(at);
      if (c === QUOTE) at = endOfString(text, at) - 1;
      else if (c === 123 || c === 91) depth++;
      else if (c === 125 || c === 93) {
        depth--;
        if (depth === 0) return at + 1;
      }
    }
  }
  // A number, true, false or null: up to the next , } ] or space.
  let at = from;
  for (; at < text.length; at++) {
    const c = text.charCodeAt(at);
    if (c === COMMA || c === 125 || c === 93 || isSpace(c)) break;
  }
  return at;
}
