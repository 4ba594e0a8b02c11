import assert from "node:assert/strict";
import { test } from "node:test";
import type { Channel } from "../../src/notifications/channel.ts";
import { budgetJobs } from "../../src/notifications/delivery-budgeting.ts";
import { destinationKey } from "../../src/notifications/destination-key.ts";
import { createProcessSendBudget } from "../../src/notifications/process-send-budget.ts";
import { giveBackToWindows, takeFromWindows } from "../../src/notifications/send-windows.ts";

const feishu = [
  { limit: 5, windowMs: 1_000 },
  { limit: 100, windowMs: 60_000 },
];

test("send windows: 5 per second and 100 per minute per destination, with the wait they need", () => {
  const first = takeFromWindows([], 7, 10_000, feishu);
  assert.deepEqual([first.granted, first.waitMs], [5, 1_000], "five at once, the sixth waits a second");
  assert.equal(takeFromWindows(first.history, 1, 10_999, feishu).granted, 0);
  let history = takeFromWindows(first.history, 5, 11_000, feishu).history;
  assert.equal(history.length, 10);
  let now = 11_000;
  while (history.length < 100) {
    now += 200;
    history = takeFromWindows(history, 1, now, feishu).history;
  }
  const refused = takeFromWindows(history, 1, now + 200, feishu);
  assert.equal(refused.granted, 0, "the 101st within a minute is refused");
  assert.equal(refused.waitMs, 10_000 + 60_000 - (now + 200), "until the minute's first send leaves it");
  const later = takeFromWindows(history, 5, 70_000, feishu);
  assert.deepEqual(
    [later.granted, later.history.length],
    [5, 100],
    "the first second's five left the minute",
  );
});

test("send windows: a history written by a clock running ahead still counts in full", () => {
  const ahead = [20_000, 20_001, 20_002, 20_003, 20_004];
  assert.deepEqual(takeFromWindows(ahead, 1, 10_000, feishu).granted, 0);
  const taken = takeFromWindows([9_000, 20_000], 2, 10_000, feishu);
  assert.deepEqual(taken.history, [9_000, 10_000, 10_000, 20_000], "kept at their own times, in order");
});

test("giving back under clock skew removes the giver's sends, never another instance's", () => {
  // A (clock ahead, at 10,100) takes 3; B (at 10,000) takes 1; C (at 10,100) takes 1; A gives back its 3.
  let history = takeFromWindows([], 3, 10_100, feishu).history;
  history = takeFromWindows(history, 1, 10_000, feishu).history;
  history = takeFromWindows(history, 1, 10_100, feishu).history;
  history = giveBackToWindows(history, 3, 10_100);
  assert.deepEqual(history, [10_000, 10_100], "B's send and C's send remain");
});

test("giving back: only sends taken at that instant go, at most as many as returned", async () => {
  assert.deepEqual(giveBackToWindows([100, 200, 200, 200, 300], 2, 200), [100, 200, 300]);
  assert.deepEqual(giveBackToWindows([100, 200], 5, 200), [100], "never more than were taken then");
  assert.deepEqual(giveBackToWindows([100, 300], 1, 200), [100, 300], "nothing taken then: nothing goes");
  const budget = createProcessSendBudget(feishu);
  const at = new Date(10_000);
  assert.equal((await budget.take(new Map([["bot", 5]]), at)).get("bot")?.granted, 5);
  await budget.giveBack(new Map([["bot", 3]]), at);
  await budget.giveBack(new Map([["other", 3]]), at);
  assert.equal((await budget.take(new Map([["bot", 5]]), at)).get("bot")?.granted, 3);
});

test("process budget: destinations do not throttle each other", async () => {
  const budget = createProcessSendBudget(feishu);
  const now = new Date(50_000);
  const grants = await budget.take(
    new Map([
      ["bot-a", 8],
      ["bot-b", 3],
    ]),
    now,
  );
  assert.deepEqual(Object.fromEntries(grants), {
    "bot-a": { granted: 5, waitMs: 1_000 },
    "bot-b": { granted: 3, waitMs: 0 },
  });
  const next = await budget.take(new Map([["bot-b", 2]]), now);
  assert.deepEqual(next.get("bot-b"), { granted: 2, waitMs: 0 });
});

test("destination keys: a hash, one per bot however its URL is spelled", () => {
  const url = "https://open.feishu.cn/open-apis/bot/v2/hook/4f1c2d3e-secret-token";
  const key = destinationKey(url);
  assert.match(key, /^[0-9a-f]{64}$/);
  assert.ok(!key.includes("secret"));
  assert.equal(destinationKey(`${url}/?from=go`), key);
  assert.equal(destinationKey(url.replace("open.feishu.cn", "OPEN.feishu.cn")), key);
  assert.notEqual(destinationKey(`${url}x`), key);
});

test("budgeting picked jobs: one budget per webhook URL however many users share it", async () => {
  const channel = (userId: bigint, webhookUrl: string, enabled = true) =>
    ({ userId, enabled, webhookUrl, authType: "none", bearerToken: "", webhookKind: "group_bot" }) as Channel;
  const shared = "https://open.feishu.cn/open-apis/bot/v2/hook/shared-token";
  const channels = new Map([
    [1n, channel(1n, shared)],
    [2n, channel(2n, `${shared}/`)],
    [3n, channel(3n, "https://open.feishu.cn/open-apis/bot/v2/hook/own-token")],
    [4n, channel(4n, shared, false)],
  ]);
  const jobs = [1n, 2n, 1n, 2n, 3n, 1n, 2n, 4n, 4n].map((userId, i) => ({ recordId: i + 1, userId }));
  const budgeted = await budgetJobs(jobs, channels, createProcessSendBudget(feishu), new Date(5_000));
  assert.deepEqual(
    budgeted.allowed.map((job) => job.recordId),
    [1, 2, 3, 4, 5, 6, 8, 9],
    "five to the shared bot, in order; the own bot's; the disabled channel's (skipped, no request)",
  );
  assert.deepEqual(
    budgeted.deferred.map((job) => job.recordId),
    [7],
  );
  assert.deepEqual([...budgeted.throttled], [[2n, 1_000]]);
});
