import assert from "node:assert/strict";
import { test } from "node:test";
import {
  brokerRetry,
  createBackoff,
  databaseRetry,
  exponentialBackoffMs,
  squareBackoffMs,
} from "../../src/lib/backoff.ts";

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

test("a loop's backoff doubles from its base, is capped, jittered upwards, and starts over after a success", () => {
  const top = createBackoff({ baseMs: 200, maxMs: 1_000, jitterRatio: 0.2 }, () => 1);
  assert.deepEqual([top.failed(), top.failed(), top.failed(), top.failed()], [240, 480, 960, 1_200]);
  assert.equal(top.failures, 4);
  top.succeeded();
  assert.equal(top.failures, 0);
  const bottom = createBackoff({ baseMs: 200, maxMs: 1_000, jitterRatio: 0.2 }, () => 0);
  assert.deepEqual([bottom.failed(), bottom.failed()], [200, 400]);
  for (const policy of [databaseRetry, brokerRetry]) {
    const backoff = createBackoff(policy);
    for (let i = 0; i < 40; i++) {
      const delay = backoff.failed();
      assert.ok(delay >= policy.baseMs && delay <= policy.maxMs * (1 + policy.jitterRatio), String(delay));
    }
  }
});
