import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../../src/lib/clock.ts";
import { createEventHub } from "../../src/lib/event-hub.ts";
import { createLogger, type Logger, silentLogger } from "../../src/lib/logger.ts";
import type { Channel } from "../../src/notifications/channel.ts";
import { createDeliveryDispatcher } from "../../src/notifications/delivery-dispatcher.ts";
import type { DeliveryEvents } from "../../src/notifications/delivery-events.ts";
import { destinationKey } from "../../src/notifications/destination-key.ts";
import type { DeliveryProvider } from "../../src/notifications/ports/delivery-provider.ts";
import type { RecordClaims } from "../../src/notifications/ports/record-store.ts";
import type { SendBudget } from "../../src/notifications/ports/send-budget.ts";
import { createProcessSendBudget } from "../../src/notifications/process-send-budget.ts";
import type { AttemptResult, NotificationRecord } from "../../src/notifications/record.ts";
import { createManualClock } from "../support/manual-clock.ts";
import { aRecord } from "../support/records.ts";

/** The dispatcher over in-memory ports: the claim rules are the SQL store's, kept to what these tests need. */
function fakeRecords(initial: readonly NotificationRecord[]) {
  const rows = new Map(initial.map((r) => [r.id, { record: r, token: "" }]));
  const written: AttemptResult[] = [];
  const claims: RecordClaims = {
    async claim(ids, _now, leaseUntil, token) {
      const won: NotificationRecord[] = [];
      for (const id of ids) {
        const row = rows.get(id);
        if (row?.record.status !== "pending") continue;
        row.record = {
          ...row.record,
          status: "sending",
          attemptCount: row.record.attemptCount + 1,
          leaseUntil,
        };
        row.token = token;
        won.push(row.record);
      }
      return won;
    },
    async recordResults(results) {
      const ok = new Set<number>();
      for (const result of results) {
        const row = rows.get(result.id);
        if (row?.record.status !== "sending" || row.token !== result.claimToken) continue;
        row.record = { ...row.record, status: result.status };
        written.push(result);
        ok.add(result.id);
      }
      return ok;
    },
  };
  /** Another instance takes the record over (its lease expired): our claim is lost. */
  const reclaim = (id: number) => {
    const row = rows.get(id);
    if (row) row.token = "someone-else";
  };
  return { claims, written, reclaim, get: (id: number) => rows.get(id)?.record };
}

const channel = (userId: bigint): Channel => ({
  userId,
  enabled: true,
  webhookUrl: `https://open.feishu.cn/open-apis/bot/v2/hook/key${userId}abcd`,
  authType: "none",
  bearerToken: "",
  webhookKind: "group_bot",
  signingSecret: "",
  lastTestStatus: "",
  lastTestError: "",
  lastTestAt: null,
});

const NOW = new Date("2026-03-02T10:00:00Z");

function dispatcherWith(
  records: ReturnType<typeof fakeRecords>,
  provider: DeliveryProvider,
  budget = createProcessSendBudget([{ limit: 100, windowMs: 1_000 }]),
  logger: Logger = silentLogger,
) {
  const events = createEventHub<DeliveryEvents>();
  const results: DeliveryEvents["delivery:result"][] = [];
  const waiters = new Set<() => void>();
  events.on("delivery:result", (result) => {
    results.push(result);
    for (const wake of waiters) wake();
  });
  const dispatcher = createDeliveryDispatcher({
    records: records.claims,
    channels: { getMany: async (ids) => new Map(ids.map((id) => [id, channel(id)])) },
    provider,
    budget,
    clock: createManualClock(NOW),
    logger,
    events,
    options: { concurrency: 4, claimBatch: 4, leaseMs: 60_000, retryDelayMs: () => 300_000 },
  });
  const stop = new AbortController();
  const running = dispatcher.run(stop.signal);
  const resultCount = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (results.length < n) return;
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
      check();
    });
  return {
    dispatcher,
    results,
    resultCount,
    stop() {
      stop.abort();
      return running;
    },
  };
}

test("a provider that throws counts as a network error: the record fails and is retried later", async () => {
  const records = fakeRecords([aRecord({ id: 1, userId: 7n })]);
  const throwing: DeliveryProvider = {
    send: async () => {
      throw new Error("socket hang up");
    },
  };
  const { dispatcher, results, resultCount, stop } = dispatcherWith(records, throwing);
  dispatcher.submit([{ recordId: 1, userId: 7n }]);
  await resultCount(1);
  await stop();
  assert.deepEqual(
    results.map(({ status, outcome, errorCode, written }) => ({ status, outcome, errorCode, written })),
    [{ status: "failed", outcome: "temporary_fail", errorCode: "network_error", written: true }],
  );
  assert.equal(records.written[0]?.lastError, "socket hang up");
  assert.equal(records.written[0]?.nextRetryAt?.toISOString(), "2026-03-02T10:05:00.000Z");
});

test("a result whose claim was lost meanwhile is not written, and the record can be submitted again", async () => {
  const records = fakeRecords([aRecord({ id: 1, userId: 7n }), aRecord({ id: 2, userId: 8n })]);
  const provider: DeliveryProvider = {
    async send(_destination, request) {
      if (request.notificationId === 1) records.reclaim(1);
      return { outcome: "success", requestPayload: null, responsePayload: null };
    },
  };
  const { dispatcher, results, resultCount, stop } = dispatcherWith(records, provider);
  dispatcher.submit([
    { recordId: 1, userId: 7n },
    { recordId: 2, userId: 8n },
  ]);
  await resultCount(2);
  const byRecord = new Map(results.map((r) => [r.recordId, r.written]));
  assert.deepEqual([byRecord.get(1), byRecord.get(2)], [false, true]);
  assert.equal(records.get(1)?.status, "sending", "the other sender's claim stands");
  assert.equal(records.get(2)?.status, "sent");
  assert.equal(dispatcher.backlog(), 0, "both attempts ended");
  await stop();
});

test("a record another claim already holds is not sent", async () => {
  const records = fakeRecords([
    aRecord({ id: 1, userId: 7n, status: "sending" }),
    aRecord({ id: 2, userId: 7n }),
  ]);
  const sent: number[] = [];
  const provider: DeliveryProvider = {
    async send(_destination, request) {
      sent.push(request.notificationId);
      return { outcome: "success", requestPayload: null, responsePayload: null };
    },
  };
  const { dispatcher, resultCount, stop } = dispatcherWith(records, provider);
  dispatcher.submit([
    { recordId: 1, userId: 7n },
    { recordId: 2, userId: 7n },
  ]);
  await resultCount(1);
  await stop();
  assert.deepEqual(sent, [2]);
  assert.equal(dispatcher.backlog(), 0, "the lost claim is forgotten, not kept queued");
});

test("the send budget of claims lost to another instance is given back; only the sends made stay spent", async () => {
  const records = fakeRecords([
    aRecord({ id: 1, userId: 7n, status: "sending" }),
    aRecord({ id: 2, userId: 7n, status: "sending" }),
    aRecord({ id: 3, userId: 7n, status: "sending" }),
    aRecord({ id: 4, userId: 7n }),
  ]);
  const budget = createProcessSendBudget([{ limit: 5, windowMs: 1_000 }]);
  const provider: DeliveryProvider = {
    send: async () => ({ outcome: "success", requestPayload: null, responsePayload: null }),
  };
  const { dispatcher, resultCount, stop } = dispatcherWith(records, provider, budget);
  dispatcher.submit([1, 2, 3, 4].map((recordId) => ({ recordId, userId: 7n })));
  await resultCount(1);
  await stop();
  const key = destinationKey(channel(7n).webhookUrl);
  const left = (await budget.take(new Map([[key, 5]]), NOW)).get(key);
  assert.equal(left?.granted, 4, "four charged, three claims lost and given back: one send spent");
});

test("a claim that fails gives its budget back (the jobs are charged again when picked again)", async () => {
  const records = fakeRecords([aRecord({ id: 1, userId: 7n })]);
  const claim = records.claims.claim;
  let failures = 1;
  records.claims.claim = (...args) =>
    failures-- > 0 ? Promise.reject(new Error("ECONNRESET")) : claim(...args);
  const budget = createProcessSendBudget([{ limit: 5, windowMs: 1_000 }]);
  const provider: DeliveryProvider = {
    send: async () => ({ outcome: "success", requestPayload: null, responsePayload: null }),
  };
  const { dispatcher, resultCount, stop } = dispatcherWith(records, provider, budget);
  dispatcher.submit([{ recordId: 1, userId: 7n }]);
  await resultCount(1);
  await stop();
  const key = destinationKey(channel(7n).webhookUrl);
  assert.equal((await budget.take(new Map([[key, 5]]), NOW)).get(key)?.granted, 4, "one send spent, not two");
});

test("a slow give-back never holds the sends of the claims that were won", async () => {
  const records = fakeRecords([
    aRecord({ id: 1, userId: 7n, status: "sending" }),
    aRecord({ id: 2, userId: 7n }),
  ]);
  const inner = createProcessSendBudget([{ limit: 5, windowMs: 1_000 }]);
  let sent!: () => void;
  const sending = new Promise<void>((resolve) => {
    sent = resolve;
  });
  let sentBeforeGiveBack: boolean | undefined;
  const budget: SendBudget = {
    take: (wanted, now) => inner.take(wanted, now),
    async giveBack(returned, takenAt) {
      // Waits for the send, up to a second: a dispatcher that awaited this first would not have sent yet.
      sentBeforeGiveBack = await Promise.race([
        sending.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1_000)),
      ]);
      await inner.giveBack(returned, takenAt);
    },
  };
  const provider: DeliveryProvider = {
    async send() {
      sent();
      return { outcome: "success", requestPayload: null, responsePayload: null };
    },
  };
  const { dispatcher, resultCount, stop } = dispatcherWith(records, provider, budget);
  dispatcher.submit([1, 2].map((recordId) => ({ recordId, userId: 7n })));
  await resultCount(1);
  await stop();
  assert.equal(sentBeforeGiveBack, true);
});

test("while results cannot be written, sending stops: finished attempts never pile up in memory", async () => {
  const records = fakeRecords(
    Array.from({ length: 100 }, (_, i) => aRecord({ id: i + 1, userId: BigInt(i + 1) })),
  );
  let release: (() => void) | undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const write = records.claims.recordResults;
  records.claims.recordResults = async (results, now) => {
    await gate;
    return write(results, now);
  };
  let sends = 0;
  const provider: DeliveryProvider = {
    async send() {
      sends += 1;
      return { outcome: "success", requestPayload: "{}", responsePayload: "{}" };
    },
  };
  const { dispatcher, resultCount, stop } = dispatcherWith(records, provider);
  dispatcher.submit(Array.from({ length: 100 }, (_, i) => ({ recordId: i + 1, userId: BigInt(i + 1) })));
  // Every port here answers without a timer: these turns let the dispatcher go as far as it would.
  for (let turn = 0; turn < 200; turn++) await new Promise((resolve) => setImmediate(resolve));
  const concurrency = 4;
  const sendsWhileBlocked = sends;
  release?.();
  await resultCount(100);
  await stop();
  assert.ok(sendsWhileBlocked > 0, "it started sending");
  assert.ok(
    sendsWhileBlocked <= 2 * concurrency,
    `${sendsWhileBlocked} sends while no result could be written`,
  );
  assert.equal(records.written.length, 100);
});

/** A deadlock as mysql2 reports it. */
const deadlock = () =>
  Object.assign(new Error("Deadlock found when trying to get lock; try restarting transaction"), {
    code: "ER_LOCK_DEADLOCK",
    errno: 1213,
  });

function capturedLogger() {
  const lines: { level: string; msg: string; failuresInARow?: number }[] = [];
  return { lines, logger: createLogger("debug", (line) => lines.push(JSON.parse(line))) };
}

/** `call` rejecting its first `failures` calls with a deadlock. */
function failingFirst<A extends unknown[], R>(call: (...args: A) => Promise<R>, failures: number) {
  let left = failures;
  return (...args: A) => (left-- > 0 ? Promise.reject(deadlock()) : call(...args));
}

/** Delivers record 1 (user 7) over the in-memory ports once `rig` made some of them fail; the log lines. */
async function deliverDespite(rig: (records: ReturnType<typeof fakeRecords>) => void) {
  const records = fakeRecords([aRecord({ id: 1, userId: 7n })]);
  rig(records);
  const provider: DeliveryProvider = {
    send: async () => ({ outcome: "success", requestPayload: null, responsePayload: null }),
  };
  const { lines, logger } = capturedLogger();
  const { dispatcher, resultCount, stop } = dispatcherWith(records, provider, undefined, logger);
  dispatcher.submit([{ recordId: 1, userId: 7n }]);
  await resultCount(1);
  await stop();
  const of = (msg: string) =>
    lines.filter((line) => line.msg === msg).map((l) => [l.level, l.failuresInARow]);
  return { lines, records, of };
}

test("a failed claim is a warning the first two times in a row and an error from the third on", async () => {
  const { records, of } = await deliverDespite((r) => {
    r.claims.claim = failingFirst(r.claims.claim, 3);
  });
  assert.deepEqual(of("cannot claim notification records"), [
    ["warn", 1],
    ["warn", 2],
    ["error", 3],
  ]);
  assert.equal(records.written.length, 1, "sent once the claim went through");
});

test("a result write that fails once is a warning, and the result is written on the next try", async () => {
  const { lines, records, of } = await deliverDespite((r) => {
    r.claims.recordResults = failingFirst(r.claims.recordResults, 1);
  });
  assert.deepEqual(of("cannot record delivery results; retrying"), [["warn", 1]]);
  assert.equal(lines.filter((line) => line.level === "error").length, 0);
  assert.equal(records.written.length, 1);
});

test("a claim that keeps failing escalates to an error even while a send budget holds part of the jobs between tries", async () => {
  // One bot with more jobs than its budget grants at once: between failed claims, rounds that only find held
  // jobs wait without touching the database. Those rounds must not count as the database having recovered.
  const records = fakeRecords([]);
  records.claims.claim = () => Promise.reject(Object.assign(new Error("read-only"), { errno: 1290 }));
  const { lines, logger } = capturedLogger();
  const escalated = new Promise<void>((resolve) => {
    const write = logger.error;
    logger.error = (msg, fields) => {
      write(msg, fields);
      resolve();
    };
  });
  const dispatcher = createDeliveryDispatcher({
    records: records.claims,
    channels: { getMany: async (ids) => new Map(ids.map((id) => [id, channel(id)])) },
    provider: { send: async () => ({ outcome: "success", requestPayload: null, responsePayload: null }) },
    budget: createProcessSendBudget([{ limit: 2, windowMs: 300 }]),
    clock: systemClock,
    logger,
    events: createEventHub<DeliveryEvents>(),
    options: { concurrency: 4, claimBatch: 4, leaseMs: 60_000, retryDelayMs: () => 300_000 },
  });
  const stop = new AbortController();
  const running = dispatcher.run(stop.signal);
  dispatcher.submit([1, 2, 3, 4, 5, 6].map((recordId) => ({ recordId, userId: 7n })));
  const timedOut = new Promise<"timed out">((resolve) =>
    setTimeout(() => resolve("timed out"), 8_000).unref(),
  );
  const outcome = await Promise.race([escalated.then(() => "escalated" as const), timedOut]);
  stop.abort();
  await running;
  const claimLines = lines.filter((line) => line.msg === "cannot claim notification records");
  assert.equal(
    outcome,
    "escalated",
    `failuresInARow: ${claimLines.map((line) => `${line.level} ${line.failuresInARow}`).join(", ")}`,
  );
  assert.deepEqual(
    claimLines.slice(0, 3).map((line) => [line.level, line.failuresInARow]),
    [
      ["warn", 1],
      ["warn", 2],
      ["error", 3],
    ],
  );
});
