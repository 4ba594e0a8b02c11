import assert from "node:assert/strict";
import { test } from "node:test";
import { percentEncodeMessage } from "../../src/api/grpc-unary-call.ts";

test("grpc-message is percent-encoded as the protocol says: only bytes outside 0x20-0x7E and %", () => {
  const message = 'row 7, user 901: sealed with key "ab12cd34", which is not configured (100% sure) — 飞书\n';
  const encoded = percentEncodeMessage(message);
  assert.match(
    encoded,
    /^row 7, user 901: sealed with key "ab12cd34", which is not configured \(100%25 sure\) %E2%80%94 /,
  );
  assert.ok(encoded.endsWith("%E9%A3%9E%E4%B9%A6%0A"));
  assert.ok(
    [...encoded].every((c) => c >= " " && c <= "~"),
    "only printable ASCII on the wire",
  );
  // grpc-js decodes with decodeURI, other clients with decodeURIComponent: both give the message back.
  assert.equal(decodeURI(encoded), message);
  assert.equal(decodeURIComponent(encoded), message);
});
