import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { App } from "../../src/app.ts";
import { FEISHU_REQUESTED_EVENT } from "../../src/notifications/feishu-requested-payload.ts";
import type { OutboxEvent, OutboxHandler } from "../../src/outbox/outbox-handler.ts";
import { createOutboxOperations } from "../../src/outbox/store/operations-store.ts";
import { outboxTable } from "../../src/outbox/store/outbox-table.ts";
import { feishuPayload } from "../support/handlers.ts";
import {
  backends,
  createTestEnv,
  outboxRows,
  recordEvents,
  startApp,
  type TestEnv,
} from "../support/harness.ts";

type Outcomes = { consumed: number[]; dead: number[]; deadByClass: Record<string, number> };

/** A handler that records each call's events (to see which rows were handled alone). */
function batchRecorder() {
  const calls: OutboxEvent[][] = [];
  const handler: OutboxHandler = {
    eventType: FEISHU_REQUESTED_EVENT,
    versions: ["1"],
    async handleEvents(events) {
      calls.push([...events]);
      return events.map(() => undefined);
    },
  };
  return { calls, handler };
}

/**
 * Enqueues rows in one transaction whose counters say how often an earlier process began handling each
 * one and died (as the consumer would have left them): started − finished crashes.
 */
async function enqueueWithCrashes(app: App, crashes: readonly number[]): Promise<number[]> {
  return app.db.kysely.transaction().execute(async (trx) => {
    const ids: number[] = [];
    for (const [i, count] of crashes.entries()) {
      const id = await app.enqueuer.enqueue(trx, {
        eventType: FEISHU_REQUESTED_EVENT,
        eventVersion: "1",
        messageKey: "7",
        payload: feishuPayload(7, `asp_crash_${i}`),
      });
      await trx
        .updateTable(app.route.table as "notification_outbox_messages")
        .set({ started_attempts: count + 1, finished_attempts: 1 })
        .where("id", "=", id)
        .execute();
      ids.push(id);
    }
    return ids;
  });
}

async function counters(app: App, ids: readonly number[]) {
  const rows = await app.db.kysely
    .selectFrom(app.route.table as "notification_outbox_messages")
    .select(["id", "started_attempts", "finished_attempts"])
    .where("id", "in", ids)
    .orderBy("id")
    .execute();
  return rows.map((r) => [Number(r.started_attempts), Number(r.finished_attempts)]);
}

for (const backend of backends) {
  describe(`crash-loop detection on ${backend}`, () => {
    let testEnv: TestEnv;
    before(async () => {
      testEnv = await createTestEnv(backend, { OUTBOX_MAX_CRASHES: "3" });
    });
    after(async () => {
      await testEnv.dispose();
    });

    test("a row the process died on 3 times is dead unhandled; ones it died on fewer times are handled alone", async () => {
      const { calls, handler } = batchRecorder();
      const app = await startApp(testEnv, { handlers: [handler] });
      const events = recordEvents(app);
      try {
        // Crashes so far: none, none, 1, 3 (the limit), 2, 4.
        const ids = await enqueueWithCrashes(app, [0, 0, 1, 3, 2, 4]);
        const [a, b, once, thrice, twice, four] = ids as [number, number, number, number, number, number];
        await events.until("every row is settled", () => {
          const settled = events.of<Outcomes>("consumer:outcomes").flatMap((o) => [...o.consumed, ...o.dead]);
          return ids.every((id) => settled.includes(id));
        });
        const rows = new Map((await outboxRows(app, ids)).map((row) => [row.id, row]));
        for (const id of [a, b, once, twice]) assert.equal(rows.get(id)?.status, "consumed", `row ${id}`);
        for (const [id, n] of [
          [thrice, 3],
          [four, 4],
        ] as const) {
          assert.equal(rows.get(id)?.status, "dead");
          assert.match(
            rows.get(id)?.last_error ?? "",
            new RegExp(`^handling crashed the process ${n} times`),
          );
        }
        const crashLoops = events
          .of<Outcomes>("consumer:outcomes")
          .reduce((n, o) => n + (o.deadByClass.crash_loop ?? 0), 0);
        assert.equal(crashLoops, 2, "both counted as crash-loop deaths (the metrics' reason class)");
        const handled = calls.flat().map((e) => e.outboxId);
        assert.ok(!handled.includes(thrice) && !handled.includes(four), "a crash-looping row is not handled");
        for (const id of [once, twice]) {
          const call = calls.find((c) => c.some((e) => e.outboxId === id));
          assert.equal(call?.length, 1, `row ${id}, interrupted before, is handled alone`);
        }
        // Each handling counted as started and finished (an earlier crash stays counted); dead rows keep theirs.
        assert.deepEqual(await counters(app, ids), [
          [2, 2],
          [2, 2],
          [3, 2],
          [4, 1],
          [4, 2],
          [5, 1],
        ]);

        // Replayed (once its cause is fixed), a crash-looped row is handled again: its crash count starts over.
        const operations = createOutboxOperations(
          outboxTable(app.db.kysely, app.db.traits, app.route.table, () => 1_000),
        );
        assert.deepEqual(await operations.replayDead({ ids: [thrice] }, "replayed", new Date()), [thrice]);
        await events.until("the replayed row is consumed", () =>
          events.of<Outcomes>("consumer:outcomes").some((o) => o.consumed.includes(thrice)),
        );
        assert.ok(
          calls.flat().some((e) => e.outboxId === thrice),
          "the replayed row reached its handler",
        );
        assert.deepEqual(await counters(app, [thrice]), [[1, 1]]);
      } finally {
        await app.stop();
      }
    });
  });
}
