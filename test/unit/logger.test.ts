import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger } from "../../src/lib/logger.ts";
import { capText, quoteInput } from "../../src/lib/text.ts";

test("an error is logged with its stack and its cause chain, on one line", () => {
  const lines: string[] = [];
  const logger = createLogger("info", (line) => lines.push(line));
  const root = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:3306"), { code: "ECONNREFUSED" });
  const error = new Error("could not save the channel", { cause: root });
  logger.error("unexpected error in an RPC", { error });
  assert.equal(lines.length, 1);
  const record = JSON.parse(lines[0] as string) as {
    error: { message: string; stack: string; cause: { message: string; code: string; stack: string } };
  };
  assert.equal(record.error.message, "could not save the channel");
  assert.match(record.error.stack, /logger\.test\.ts/);
  assert.equal(record.error.cause.code, "ECONNREFUSED");
  assert.match(record.error.cause.stack, /ECONNREFUSED/);
});

test("a cause cycle and a non-Error cause are logged without looping", () => {
  const lines: string[] = [];
  const logger = createLogger("info", (line) => lines.push(line));
  const a = new Error("a");
  const b = new Error("b", { cause: a });
  (a as { cause?: unknown }).cause = b;
  logger.error("cycle", { error: a, other: new Error("x", { cause: { table: "t", id: 3n } }) });
  const record = JSON.parse(lines[0] as string) as { other: { cause: unknown } };
  assert.deepEqual(record.other.cause, { table: "t", id: "3" });
});

test("capText bounds code points and UTF-8 bytes; quoteInput quotes at most 256 code points", () => {
  assert.equal(capText("short", 300, 1024), "short");
  const long = capText("é".repeat(2_000), 300, 1_024);
  assert.ok(Array.from(long).length <= 300 && Buffer.byteLength(long) <= 1_024 && long.endsWith("…"));
  const emoji = capText("😀".repeat(1_000), 300, 1_024);
  assert.ok(Buffer.byteLength(emoji) <= 1_024 && !emoji.includes("\uFFFD"));
  assert.equal(quoteInput("a".repeat(300)), `${"a".repeat(256)}…(44 more)`);
});
