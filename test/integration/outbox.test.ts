import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "kysely";
import type { App } from "../../src/app.ts";
import { AppError } from "../../src/lib/errors.ts";
import { FEISHU_REQUESTED_EVENT } from "../../src/notifications/feishu-requested-payload.ts";
import { encodeKafkaEnvelope } from "../../src/outbox/envelope.ts";
import { busFor, withHangingPublishes } from "../support/buses.ts";
import { feishuPayload, recordingHandler } from "../support/handlers.ts";
import {
  backends,
  createTestEnv,
  outboxRows,
  query,
  recordEvents,
  startApp,
  type TestEnv,
} from "../support/harness.ts";
import { createManualClock } from "../support/manual-clock.ts";

type Outcomes = { consumed: number[]; dead: number[]; retried: number[]; skipped: number[] };
type RelayFailed = { ids: number[]; error: string; brokerUnavailable: boolean };

async function enqueue(app: App, userId: number, previewId: string, extra: { eventVersion?: string } = {}) {
  return app.db.kysely.transaction().execute((trx) =>
    app.enqueuer.enqueue(trx, {
      eventType: FEISHU_REQUESTED_EVENT,
      eventId: previewId,
      eventVersion: extra.eventVersion ?? "1",
      aggregateId: previewId,
      messageKey: String(userId),
      payload: feishuPayload(userId, previewId),
    }),
  );
}

for (const backend of backends) {
  describe(`outbox on ${backend}`, () => {
    let testEnv: TestEnv;
    before(async () => {
      testEnv = await createTestEnv(backend);
    });
    after(async () => {
      await testEnv.dispose();
    });

    test("1. an event enqueued in a rolled-back transaction leaves nothing behind", async () => {
      const app = await startApp(testEnv, { start: false });
      try {
        await app.start();
        const before = (await outboxRows(app)).length;
        await assert.rejects(
          app.db.kysely.transaction().execute(async (trx) => {
            await app.enqueuer.enqueue(trx, {
              eventType: FEISHU_REQUESTED_EVENT,
              messageKey: "1",
              payload: feishuPayload(1, "asp_rollback"),
            });
            throw new Error("the caller's business write failed");
          }),
          /business write failed/,
        );
        assert.equal((await outboxRows(app)).length, before);
        const committed = await enqueue(app, 1, "asp_committed");
        assert.ok((await outboxRows(app, [committed])).length === 1, "a committed enqueue is visible");
      } finally {
        await app.stop();
      }
    });

    test("2. enqueue → relay → bus → handler → consumed", async () => {
      const { calls, handler } = recordingHandler();
      const app = await startApp(testEnv, { handlers: [handler] });
      const events = recordEvents(app);
      try {
        const id = await enqueue(app, 42, "asp_flow");
        await events.until("the row is consumed", () =>
          events.of<Outcomes>("consumer:outcomes").some((o) => o.consumed.includes(id)),
        );
        const [row] = await outboxRows(app, [id]);
        assert.equal(row?.status, "consumed");
        assert.ok(row?.consumed_at, "consumed_at is set");
        const call = calls.find((c) => c.outboxId === id);
        assert.ok(call, "the handler saw the event");
        assert.equal(call.eventType, FEISHU_REQUESTED_EVENT);
        assert.equal(call.eventId, "asp_flow");
        assert.equal(call.eventVersion, "1");
        assert.equal(call.messageKey, "42");
        assert.deepEqual(JSON.parse(call.payload), feishuPayload(42, "asp_flow"));
      } finally {
        await app.stop();
      }
    });

    test("3. a failing handler is retried with backoff and the row is dead after max_retry", async () => {
      const clock = createManualClock();
      const { calls, handler } = recordingHandler(async () => {
        throw new Error("webhook store unavailable");
      });
      const app = await startApp(testEnv, {
        handlers: [handler],
        clock,
        env: { OUTBOX_MAX_RETRY: "3", OUTBOX_RETRY_BASE_MS: "1000", OUTBOX_RETRY_MAX_MS: "100000" },
      });
      const events = recordEvents(app);
      try {
        const id = await enqueue(app, 7, "asp_retry");
        for (let failures = 1; failures <= 2; failures++) {
          await events.until(
            `failure ${failures}`,
            () =>
              events.of<Outcomes>("consumer:outcomes").filter((o) => o.retried.includes(id)).length >=
              failures,
          );
          const [row] = await outboxRows(app, [id]);
          assert.equal(row?.status, "pending");
          assert.equal(row?.retry_count, failures);
          assert.match(row?.last_error ?? "", /handler failed: webhook store unavailable/);
          // n² seconds: 1 s after the first failure, 4 s after the second; not due before that.
          const due = app.db.traits.readTime(row?.next_retry_at)?.getTime();
          assert.equal(due, clock.now().getTime() + 1000 * failures * failures);
          assert.equal(calls.filter((c) => c.outboxId === id).length, failures);
          clock.advance(1000 * failures * failures);
        }
        await events.until(
          "the row is dead",
          () =>
            events
              .of<Outcomes>("consumer:outcomes")
              .some((o) => o.retried.includes(id) && o.retried.length > 0) &&
            events.of<Outcomes>("consumer:outcomes").filter((o) => o.retried.includes(id)).length >= 3,
        );
        const [row] = await outboxRows(app, [id]);
        assert.equal(row?.status, "dead");
        assert.equal(row?.retry_count, 3);
        assert.equal(row?.next_retry_at, null);
        assert.match(row?.last_error ?? "", /webhook store unavailable/);
        assert.equal(calls.filter((c) => c.outboxId === id).length, 3);
      } finally {
        await app.stop();
      }
    });

    test("4. poison rows and messages end dead with a reason, and later events still flow", async () => {
      const { calls, handler } = recordingHandler(async (event) => {
        const payload = JSON.parse(event.payload) as { user_id?: unknown };
        if (typeof payload.user_id !== "number") {
          throw new AppError("poison", "payload.user_id must be a positive integer", { field: "user_id" });
        }
      });
      const app = await startApp(testEnv, { handlers: [handler] });
      const events = recordEvents(app);
      const table = sql.table(app.route.table);
      const now = app.db.traits.time(new Date());
      try {
        // a. The row's envelope is not JSON: the relay cannot publish it.
        await query(
          app,
          sql`insert into ${table} (biz_type, service_name, topic, message_key, payload, status, retry_count,
              max_retry, next_retry_at, created_at, updated_at)
              values (${FEISHU_REQUESTED_EVENT}, 'notification', ${testEnv.topic}, '9', ${"{not json"}, 'pending',
              0, 20, ${now}, ${now}, ${now})`,
        );
        const [badRow] = (await outboxRows(app)).slice(-1);
        assert.ok(badRow);
        // b. An unsupported event version.
        const badVersion = await enqueue(app, 9, "asp_v9", { eventVersion: "9" });
        // c. A payload the handler rejects as poison.
        const badPayload = await app.db.kysely.transaction().execute((trx) =>
          app.enqueuer.enqueue(trx, {
            eventType: FEISHU_REQUESTED_EVENT,
            messageKey: "9",
            payload: { user: "x" },
          }),
        );
        // d. Garbage on the wire: not JSON, no outbox id, and an envelope without event_type.
        await app.bus.publish(testEnv.topic, [
          { key: "9", value: "this is not json" },
          { key: "9", value: JSON.stringify({ event_type: FEISHU_REQUESTED_EVENT, payload: {} }) },
        ]);
        // e. A valid event after all of that.
        const good = await enqueue(app, 9, "asp_after_poison");

        await events.until("the valid event is consumed", () =>
          events.of<Outcomes>("consumer:outcomes").some((o) => o.consumed.includes(good)),
        );
        await events.until("poison rows are dead", () => {
          const dead = events.of<Outcomes>("consumer:outcomes").flatMap((o) => o.dead);
          return dead.includes(badVersion) && dead.includes(badPayload);
        });
        await events.until("bad wire messages are dropped", () => events.of("consumer:dropped").length >= 2);

        const rows = new Map((await outboxRows(app)).map((row) => [row.id, row]));
        assert.equal(rows.get(badRow.id)?.status, "dead");
        assert.match(rows.get(badRow.id)?.last_error ?? "", /cannot decode outbox envelope: invalid JSON/);
        assert.equal(rows.get(badVersion)?.status, "dead");
        assert.match(rows.get(badVersion)?.last_error ?? "", / event_version 不匹配: 9$/);
        assert.equal(rows.get(badPayload)?.status, "dead");
        assert.match(rows.get(badPayload)?.last_error ?? "", /payload.user_id must be a positive integer/);
        assert.equal(rows.get(good)?.status, "consumed");
        const dropped = events.of<{ reason: string }>("consumer:dropped").map((d) => d.reason);
        assert.ok(
          dropped.some((r) => r.startsWith("invalid JSON")),
          dropped.join("; "),
        );
        assert.ok(
          dropped.some((r) => r.includes("no valid outbox_id")),
          dropped.join("; "),
        );
        assert.ok(!calls.some((c) => c.outboxId === badVersion), "a bad version never reaches the handler");
      } finally {
        await app.stop();
      }
    });

    test("5. a row inserted by SQL in the Go producer's exact format flows through", async () => {
      const { calls, handler } = recordingHandler();
      const app = await startApp(testEnv, { handlers: [handler] });
      const events = recordEvents(app);
      try {
        // What active-scheduler's outbox.WithTx(tx).CreateMessage writes (reference §3, §4.3): the row
        // envelope with event_id = aggregate_id = preview_id, version "1", key = user id, status pending.
        const payload = JSON.stringify({
          event_id: "asp_go_1",
          event_type: FEISHU_REQUESTED_EVENT,
          event_version: "1",
          aggregate_id: "asp_go_1",
          payload: {
            ...feishuPayload(4242, "asp_go_1"),
            fallback_text: "你有一条新的日程调整建议，请查看：/x",
          },
        });
        const now = app.db.traits.time(new Date());
        const table = sql.table(app.route.table);
        await query(
          app,
          sql`insert into ${table} (biz_type, service_name, topic, message_key, payload, status, retry_count,
              max_retry, next_retry_at, last_error, published_at, consumed_at, created_at, updated_at)
              values (${FEISHU_REQUESTED_EVENT}, 'notification', ${testEnv.topic}, '4242', ${payload}, 'pending',
              0, 20, ${now}, null, null, null, ${now}, ${now})`,
        );
        await events.until(
          "the Go-written row is consumed",
          () =>
            calls.some((c) => c.eventId === "asp_go_1") &&
            events.of<Outcomes>("consumer:outcomes").some((o) => o.consumed.length > 0),
        );
        const call = calls.find((c) => c.eventId === "asp_go_1");
        assert.ok(call);
        assert.equal(call.messageKey, "4242");
        assert.equal(call.aggregateId, "asp_go_1");
        assert.equal((JSON.parse(call.payload) as { user_id: number }).user_id, 4242);
        const [row] = await outboxRows(app, [call.outboxId]);
        assert.equal(row?.status, "consumed");
      } finally {
        await app.stop();
      }
    });

    test("6. a stale copy of a consumed row's message is skipped: the handler does not see it again", async () => {
      const { calls, handler } = recordingHandler();
      const app = await startApp(testEnv, { handlers: [handler] });
      const events = recordEvents(app);
      try {
        const id = await enqueue(app, 12, "asp_stale");
        await events.until("the row is consumed", () =>
          events.of<Outcomes>("consumer:outcomes").some((o) => o.consumed.includes(id)),
        );
        // The same message again, as a relay that re-published the row before it was consumed would leave it.
        const [call] = calls;
        assert.ok(call);
        await app.bus.publish(testEnv.topic, [
          {
            key: "12",
            value: encodeKafkaEnvelope({ ...call, outboxId: id, serviceName: "notification" }),
          },
        ]);
        await events.until("the copy is skipped", () =>
          events.of<Outcomes>("consumer:outcomes").some((o) => o.skipped.includes(id)),
        );
        assert.equal(calls.filter((c) => c.outboxId === id).length, 1);
        const [row] = await outboxRows(app, [id]);
        assert.deepEqual([row?.status, row?.retry_count], ["consumed", 0]);
      } finally {
        await app.stop();
      }
    });

    test("7. a publish that hangs times out: the rows go back untouched and flow once the broker answers", async () => {
      const { calls, handler } = recordingHandler();
      const bus = withHangingPublishes(busFor(backend), 1);
      const app = await startApp(testEnv, {
        handlers: [handler],
        bus,
        env: { OUTBOX_PUBLISH_TIMEOUT_MS: "300" },
      });
      const events = recordEvents(app);
      try {
        const id = await enqueue(app, 13, "asp_hang");
        await events.until("the relay gave up on the publish", () =>
          events.of<RelayFailed>("relay:failed").some((f) => f.ids.includes(id)),
        );
        const [failed] = events.of<RelayFailed>("relay:failed");
        assert.equal(failed?.brokerUnavailable, true, "a timeout is the broker's, not the row's");
        assert.match(failed?.error ?? "", /publish to .* timed out after 300 ms/);
        await events.until("the row is consumed after all", () =>
          events.of<Outcomes>("consumer:outcomes").some((o) => o.consumed.includes(id)),
        );
        const [row] = await outboxRows(app, [id]);
        assert.deepEqual([row?.status, row?.retry_count], ["consumed", 0], "the timeout spent no retry");
        assert.equal(calls.filter((c) => c.outboxId === id).length, 1);
        assert.equal(bus.hung(), 1);
      } finally {
        await app.stop();
      }
    });

    test("8. a claim its relay never published is re-queued after two publish timeouts; a published row waits for the stale-claim time", async () => {
      const clock = createManualClock();
      const { calls, handler } = recordingHandler();
      const app = await startApp(testEnv, {
        handlers: [handler],
        clock,
        env: {
          OUTBOX_PUBLISH_TIMEOUT_MS: "1000",
          OUTBOX_STALE_PUBLISHED_MS: "60000",
          OUTBOX_SWEEP_INTERVAL_MS: "20",
        },
      });
      const events = recordEvents(app);
      type Sweep = { retried: number };
      try {
        // Two rows in the claimed state (`published`), as relays leave them: one the broker never acknowledged
        // (its relay died between the claim and the answer: published_at is null, no message exists), one
        // acknowledged whose message is presumably still waiting in the topic.
        const t = app.db.traits.time(clock.now());
        const insert = (previewId: string, publishedAt: string | null) =>
          query(
            app,
            sql`insert into ${sql.table(app.route.table)} (biz_type, service_name, topic, message_key, payload,
                status, retry_count, max_retry, next_retry_at, published_at, created_at, updated_at)
                values (${FEISHU_REQUESTED_EVENT}, 'notification', ${testEnv.topic}, '7',
                ${JSON.stringify({ event_id: previewId, event_type: FEISHU_REQUESTED_EVENT, event_version: "1", payload: feishuPayload(7, previewId) })},
                'published', 0, 20, null, ${publishedAt}, ${t}, ${t})`,
          );
        await insert("asp_unacked", null);
        await insert("asp_acked", t);
        const [unacked, acked] = (await outboxRows(app)).slice(-2).map((row) => row.id);
        const consumed = (id: number | undefined) =>
          events.of<Outcomes>("consumer:outcomes").some((o) => o.consumed.includes(id ?? -1));

        clock.advance(3_100); // past 2 × OUTBOX_PUBLISH_TIMEOUT_MS + 1 s, far below the stale-claim time
        await events.until("the unacknowledged claim is re-queued", () =>
          events.of<Sweep>("sweeper:requeued").some((e) => e.retried > 0),
        );
        clock.advance(1_000);
        await events.until("it is consumed", () => consumed(unacked));
        const [unackedRow, ackedRow] = await outboxRows(app, [unacked ?? -1, acked ?? -1]);
        assert.deepEqual([unackedRow?.status, unackedRow?.retry_count], ["consumed", 1]);
        assert.deepEqual(
          [ackedRow?.status, ackedRow?.retry_count],
          ["published", 0],
          "an acknowledged row waits",
        );
        assert.ok(calls.some((c) => c.eventId === "asp_unacked"));
        assert.ok(!calls.some((c) => c.eventId === "asp_acked"));

        clock.advance(60_000);
        await events.until(
          "the acknowledged row is re-queued at the stale-claim time",
          () => events.of<Sweep>("sweeper:requeued").reduce((n, e) => n + e.retried, 0) >= 2,
        );
        clock.advance(1_000);
        await events.until("it is consumed", () => consumed(acked));
        // Every row the relay publishes itself carries the broker's acknowledgement time.
        const published = await query<{ published_at: unknown }>(
          app,
          sql`select published_at from ${sql.table(app.route.table)} where id = ${unacked ?? -1}`,
        );
        assert.notEqual(published[0]?.published_at ?? null, null);
      } finally {
        await app.stop();
      }
    });
  });
}
