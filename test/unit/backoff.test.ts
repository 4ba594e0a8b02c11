import assert from "node:assert/strict";
import { test } from "node:test";
import { exponentialBackoffMs, squareBackoffMs } from "../../src/lib/backoff.ts";

test("outbox backoff is n² seconds capped at 100 s, as SmartFlow's main line", () => {
  const delays = [1, 2, 3, 9, 10, 11, 20].map((n) => squareBackoffMs(n, 1_000, 100_000) / 1_000);
  assert.deepEqual(delays, [1, 4, 9, 81, 100, 100, 100]);
  assert.equal(squareBackoffMs(0, 1_000, 100_000), 1_000);
});

test("delivery backoff is 5, 10, 20, 30 minutes plus at most 10 % jitter", () => {
  const minute = 60_000;
  const none = [1, 2, 3, 4, 5].map(
    (n) => exponentialBackoffMs(n, 5 * minute, 30 * minute, 0.1, () => 0) / minute,
  );
  assert.deepEqual(none, [5, 10, 20, 30, 30]);
  const most = exponentialBackoffMs(2, 5 * minute, 30 * minute, 0.1, () => 1);
  assert.equal(most, 11 * minute);
});
