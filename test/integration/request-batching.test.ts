import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { App } from "../../src/app.ts";
import {
  RequestFeishuNotificationRequestSchema,
  RequestFeishuNotificationResponseSchema,
} from "../../src/gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import { rpcClient } from "../support/grpc-clients.ts";
import { type Backend, backends, createTestEnv, query, startApp, type TestEnv } from "../support/harness.ts";

const OPS = "/smartflow.notification.v1.NotificationOpsService";
const INVALID = 3;

type Answer = { eventId: string; sent: string; dedupeKey: string; outboxId: bigint; duplicate: boolean };

function requestOf(eventId: string, dedupeKey: string, extra: object = {}) {
  return {
    eventId,
    userId: 77n,
    previewId: `asp_${eventId}`,
    triggerType: "batch_test",
    dedupeKey,
    targetUrl: `/assistant/${eventId}`,
    ...extra,
  };
}

function client(app: App) {
  const rpc = rpcClient(`127.0.0.1:${app.apiPort()}`);
  return {
    async call(eventId: string, dedupeKey: string, extra: object = {}): Promise<Answer> {
      const answer = await rpc.unary(
        `${OPS}/RequestFeishuNotification`,
        RequestFeishuNotificationRequestSchema,
        RequestFeishuNotificationResponseSchema,
        requestOf(eventId, dedupeKey, extra),
        { deadlineMs: 60_000 },
      );
      return {
        eventId,
        sent: dedupeKey,
        dedupeKey: answer.dedupeKey,
        outboxId: answer.outboxId,
        duplicate: answer.duplicate,
      };
    },
    close: () => rpc.close(),
  };
}

/** The outbox rows' event ids by outbox id, and the request keys, as committed. */
async function committed(app: App) {
  const rows = await query<{ id: unknown; payload: string }>(
    app,
    `select id, payload from ${app.route.table}`,
  );
  const keys = await query<{ event_id: string; outbox_id: unknown; dedupe_key: string }>(
    app,
    "select event_id, outbox_id, dedupe_key from notification_request_keys",
  );
  return {
    eventOf: new Map(rows.map((row) => [Number(row.id), String(JSON.parse(row.payload).event_id)])),
    keys: new Map(keys.map((k) => [k.event_id, { outboxId: Number(k.outbox_id), dedupeKey: k.dedupe_key }])),
  };
}

/**
 * Answers as a serial run would give them, in the order the first of each event id committed: one answer
 * per event id is not a duplicate and names a row of its own carrying that event id; every other answer for
 * that event id is a duplicate naming the same row and the first one's dedupe key.
 */
function assertSerial(answers: readonly Answer[], state: Awaited<ReturnType<typeof committed>>) {
  const byEvent = new Map<string, Answer[]>();
  for (const answer of answers) byEvent.set(answer.eventId, [...(byEvent.get(answer.eventId) ?? []), answer]);
  for (const [eventId, group] of byEvent) {
    const firsts = group.filter((a) => !a.duplicate);
    assert.equal(firsts.length, 1, `${eventId}: exactly one answer is not a duplicate`);
    const first = firsts[0] as Answer;
    const key = state.keys.get(eventId);
    assert.deepEqual(
      key,
      { outboxId: Number(first.outboxId), dedupeKey: first.dedupeKey },
      `${eventId}: key`,
    );
    assert.equal(first.dedupeKey, first.sent, `${eventId}: the first answers its own dedupe key`);
    assert.equal(state.eventOf.get(Number(first.outboxId)), eventId, `${eventId}: its row carries it`);
    for (const other of group) {
      assert.deepEqual(
        [other.outboxId, other.dedupeKey],
        [first.outboxId, first.dedupeKey],
        `${eventId}: same`,
      );
    }
  }
  assert.equal(state.eventOf.size, byEvent.size, "one outbox row per event id, none more");
}

for (const backend of backends) {
  describe(`RequestFeishuNotification batching (${backend})`, () => {
    let testEnv: TestEnv;
    let app: App;
    before(async () => {
      // A wait and one batch at a time: requests pile up into batches, and the next ones wait behind them.
      testEnv = await createTestEnv(backend as Backend, {
        REQUEST_BATCH_MAX_SIZE: "16",
        REQUEST_BATCH_MAX_WAIT_MS: "5",
        REQUEST_BATCH_CONCURRENCY: "1",
      });
      app = await startApp(testEnv);
    });
    after(async () => {
      await app.stop();
      await testEnv.dispose();
    });

    test("duplicates within a batch and across batches answer as serial requests would", async () => {
      const rpc = client(app);
      try {
        // 40 event ids, each sent 3 times at once with different dedupe keys (inside one batch or several),
        const first = await Promise.all(
          Array.from({ length: 120 }, (_, i) => rpc.call(`evt-dup-${i % 40}`, `key-${i % 40}-${i}`)),
        );
        // then every one again, with others new, after the first ones committed.
        const second = await Promise.all(
          Array.from({ length: 60 }, (_, i) => rpc.call(`evt-dup-${i}`, `later-${i}`)),
        );
        assertSerial([...first, ...second], await committed(app));
        for (const answer of second.slice(0, 40)) assert.equal(answer.duplicate, true, answer.eventId);
      } finally {
        rpc.close();
      }
    });

    test("an invalid request fails alone; its batch-mates are written", async () => {
      const rpc = client(app);
      try {
        const outcomes = await Promise.allSettled(
          Array.from({ length: 48 }, (_, i) =>
            rpc.call(
              `evt-mixed-${i}`,
              `mixed-${i}`,
              i % 6 === 0 ? { targetUrl: "https://evil.example/x" } : {},
            ),
          ),
        );
        outcomes.forEach((outcome, i) => {
          if (i % 6 === 0) {
            assert.equal(outcome.status, "rejected", `request ${i}`);
            assert.equal((outcome as PromiseRejectedResult).reason.code, INVALID, `request ${i}`);
          } else {
            assert.equal(
              outcome.status,
              "fulfilled",
              `request ${i}: ${String((outcome as { reason?: unknown }).reason)}`,
            );
          }
        });
        const state = await committed(app);
        for (let i = 0; i < 48; i++) assert.equal(state.keys.has(`evt-mixed-${i}`), i % 6 !== 0, `key ${i}`);
      } finally {
        rpc.close();
      }
    });
  });
}
