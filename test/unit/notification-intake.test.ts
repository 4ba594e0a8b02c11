import assert from "node:assert/strict";
import { test } from "node:test";
import { AppError } from "../../src/lib/errors.ts";
import { createEventHub } from "../../src/lib/event-hub.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import type { DeliveryEvents } from "../../src/notifications/delivery-events.ts";
import type { DeliveryJob } from "../../src/notifications/delivery-queue.ts";
import { createFeishuRequestedHandler } from "../../src/notifications/feishu-requested-handler.ts";
import { createNotificationRequests } from "../../src/notifications/notification-requests.ts";
import type { NewEvent, RequestKey } from "../../src/notifications/ports/event-outbox.ts";
import type { RecordIntake } from "../../src/notifications/ports/record-store.ts";
import { requestedPayload } from "../support/delivery.ts";
import { createManualClock } from "../support/manual-clock.ts";
import { aRecord } from "../support/records.ts";

/** The domain's intake and requests over in-memory ports: no database, no broker. */

test("intake: a poison payload fails alone; a record that needs a send is queued, others are not", async () => {
  const now = new Date("2026-03-02T10:00:00Z");
  const states = new Map([
    ["k-new", aRecord({ id: 1, userId: 41n, status: "pending" })],
    [
      "k-sending",
      aRecord({ id: 2, userId: 42n, status: "sending", leaseUntil: new Date(now.getTime() + 1) }),
    ],
    ["k-failed-due", aRecord({ id: 3, userId: 43n, status: "failed", nextRetryAt: now })],
  ]);
  const records: RecordIntake = {
    intake: async (items) =>
      items.map((item) => ({ record: states.get(item.payload.dedupeKey) ?? aRecord(), reused: false })),
  };
  const queued: DeliveryJob[] = [];
  const handler = createFeishuRequestedHandler({
    records,
    deliveries: { submit: (jobs) => queued.push(...jobs) },
    clock: createManualClock(now),
    logger: silentLogger,
    events: createEventHub<DeliveryEvents>(),
    leaseMs: 60_000,
  });
  const event = (outboxId: number, payload: unknown) => ({ outboxId, payload: JSON.stringify(payload) });
  const failures = await handler.handle([
    event(10, requestedPayload(41, "p1", "k-new")),
    event(11, { ...requestedPayload(99, "p2"), user_id: 0 }),
    event(12, requestedPayload(42, "p3", "k-sending")),
    event(13, requestedPayload(43, "p4", "k-failed-due")),
  ]);
  assert.equal(failures[0], undefined);
  assert.ok(AppError.is(failures[1], "poison") && failures[1].field === "user_id" && !failures[1].retryable);
  assert.deepEqual([failures[2], failures[3]], [undefined, undefined]);
  assert.deepEqual(
    queued.map((job) => [job.recordId, job.outboxId]),
    [
      [1, 10],
      [3, 13],
    ],
    "the record another sender holds is not queued again",
  );
});

test("requests: one event per event_id, the event and its key in one transaction, a racing twin reads the winner", async () => {
  const committed = new Map<string, RequestKey>();
  const enqueued: NewEvent[] = [];
  let nextOutboxId = 100;
  let racer: RequestKey | undefined;
  const requests = createNotificationRequests({
    keys: {
      find: async (eventId) => committed.get(eventId),
      add: async () => undefined,
      findMany: async () => new Map(),
      addMany: async () => undefined,
    },
    inTransaction: async (work) => {
      const staged: RequestKey[] = [];
      const events: NewEvent[] = [];
      const enqueue = async (event: NewEvent) => {
        events.push(event);
        return nextOutboxId++;
      };
      const add = async (key: RequestKey) => {
        if (racer) {
          committed.set(racer.eventId, racer);
          throw new Error("duplicate key event_id");
        }
        staged.push(key);
      };
      const result = await work({
        enqueue,
        enqueueMany: async (many) => Promise.all(many.map(enqueue)),
        keys: {
          find: async (eventId) => committed.get(eventId),
          add,
          findMany: async (ids) => {
            const found = new Map<string, RequestKey>();
            for (const id of ids) {
              const key = committed.get(id);
              if (key) found.set(id, key);
            }
            return found;
          },
          addMany: async (keys) => {
            for (const key of keys) await add(key);
          },
        },
      });
      for (const key of staged) committed.set(key.eventId, key);
      enqueued.push(...events);
      return result;
    },
    now: () => new Date("2026-03-02T10:41:00+08:00"),
  });
  const input = {
    eventId: " evt-1 ",
    userId: 42n,
    triggerId: "ast_1",
    previewId: "asp_1",
    triggerType: "unfinished_feedback",
    targetType: "task",
    targetId: 7n,
    dedupeKey: "",
    targetUrl: "/assistant/conv_1",
    summaryText: "请确认",
    fallbackText: "",
    traceId: "",
    requestedAt: new Date("2026-03-02T10:41:00+08:00"),
  };
  const first = await requests.request(input);
  assert.equal(first.duplicate, false);
  assert.equal(first.outboxId, 100);
  assert.match(first.dedupeKey, /^42:unfinished_feedback:2026-03-02T\d\d:(00|30):00/);
  assert.deepEqual(await requests.request(input), { ...first, duplicate: true });
  assert.equal(enqueued.length, 1);
  assert.deepEqual(
    [enqueued[0]?.eventType, enqueued[0]?.eventId, enqueued[0]?.messageKey],
    ["notification.feishu.requested", "evt-1", "42"],
  );

  racer = { eventId: "evt-2", outboxId: 7, dedupeKey: "won" };
  assert.deepEqual(await requests.request({ ...input, eventId: "evt-2" }), {
    outboxId: 7,
    duplicate: true,
    dedupeKey: "won",
  });
  assert.equal(enqueued.length, 1, "the loser's event rolled back with its key");

  await assert.rejects(requests.request({ ...input, eventId: " " }), /event_id is required/);
  await assert.rejects(
    requests.request({ ...input, eventId: "evt-3", targetUrl: "https://evil.example" }),
    (error: unknown) => AppError.is(error, "invalid_argument") && error.field === "target_url",
  );
});
