import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "kysely";
import type { App } from "../../src/app.ts";
import { migrateToLatest } from "../../src/db/migrations.ts";
import { createRetentionJob } from "../../src/retention/retention-job.ts";
import {
  createRetentionStore,
  type ExpiryRule,
  type RetentionStore,
} from "../../src/retention/retention-store.ts";
import { DAY, shanghai } from "../support/go-tables.ts";
import { backends, createTestEnv, query, recordEvents, startApp, type TestEnv } from "../support/harness.ts";
import { createManualClock } from "../support/manual-clock.ts";

const DAY_MS = 86_400_000;
const CONSUMED_DAYS = 7;
const RECORDS_DAYS = 30;
const DEAD_DAYS = 90;
const retentionEnv = {
  RETENTION_CONSUMED_DAYS: String(CONSUMED_DAYS),
  RETENTION_RECORDS_DAYS: String(RECORDS_DAYS),
  RETENTION_DEAD_DAYS: String(DEAD_DAYS),
  RETENTION_BATCH_PAUSE_MS: "0",
};

/**
 * The retention job on both databases: final rows past their retention go, everything else stays, in
 * bounded batches, and two instances may run it at once. The apps are not started: nothing else writes.
 */
for (const backend of backends) {
  describe(`retention on ${backend}`, () => {
    let testEnv: TestEnv;
    let app: App;
    const clock = createManualClock(new Date("2026-06-15T12:00:00.000Z"));
    before(async () => {
      testEnv = await createTestEnv(backend, retentionEnv);
      app = await startApp(testEnv, { start: false, clock });
      await migrateToLatest(app.db.kysely, app.db.traits, { outbox: app.route.table });
    });
    after(async () => {
      await app.db.close();
      await testEnv.dispose();
    });

    /** The rule for consumed outbox rows, as the app builds it from RETENTION_CONSUMED_DAYS. */
    const consumedRule = (): ExpiryRule => ({
      table: app.route.table,
      status: "consumed",
      column: "updated_at",
      key: "id",
      keepMs: CONSUMED_DAYS * DAY_MS,
    });
    let seq = 0;
    const ago = (ms: number) => app.db.traits.time(new Date(clock.now().getTime() - ms));
    const outboxRow = async (status: string, ageMs: number) => {
      const result = await app.db.kysely
        .insertInto(app.route.table as "notification_outbox_messages")
        .values({
          biz_type: "notification.feishu.requested",
          service_name: "notification",
          topic: testEnv.topic,
          message_key: "1",
          payload: "{}",
          status,
          created_at: ago(ageMs + DAY_MS),
          updated_at: ago(ageMs),
        })
        .executeTakeFirstOrThrow();
      return Number(result.insertId);
    };
    const record = async (status: string, ageMs: number) => {
      seq += 1;
      const result = await app.db.kysely
        .insertInto("notification_records")
        .values({
          channel: "feishu",
          user_id: 1n,
          trigger_id: `trg_${seq}`,
          preview_id: `pv_${seq}`,
          trigger_type: "important_urgent_task",
          target_type: "task",
          target_id: 1n,
          dedupe_key: `retention-${seq}`,
          target_url: "https://example.test/",
          fallback_used: 0,
          status,
          created_at: ago(ageMs + DAY_MS),
          updated_at: ago(ageMs),
        })
        .executeTakeFirstOrThrow();
      return Number(result.insertId);
    };
    const requestKey = async (ageMs: number) => {
      seq += 1;
      const eventId = `evt_${seq}`;
      await app.db.kysely
        .insertInto("notification_request_keys")
        .values({ event_id: eventId, outbox_id: seq, dedupe_key: `k${seq}`, created_at: ago(ageMs) })
        .execute();
      return eventId;
    };
    const idsIn = async (table: string) =>
      new Set(
        (await query<{ id: number | string }>(app, sql`select id from ${sql.table(table)}`)).map((r) =>
          Number(r.id),
        ),
      );
    const clear = async () => {
      for (const table of [app.route.table, "notification_records", "notification_request_keys"]) {
        await query(app, sql`delete from ${sql.table(table)}`);
      }
    };

    test("deletes only final rows past their retention; rows in flight stay whatever their age", async () => {
      await clear();
      const second = 1_000;
      const keptOutbox: number[] = [];
      const goneOutbox: number[] = [];
      const keptRecords: number[] = [];
      const goneRecords: number[] = [];
      for (const [status, days] of [
        ["consumed", CONSUMED_DAYS],
        ["dead", DEAD_DAYS],
      ] as const) {
        keptOutbox.push(await outboxRow(status, days * DAY_MS - second));
        goneOutbox.push(await outboxRow(status, days * DAY_MS + second));
      }
      for (const status of ["pending", "published"]) keptOutbox.push(await outboxRow(status, 3_650 * DAY_MS));
      for (const [status, days] of [
        ["sent", RECORDS_DAYS],
        ["skipped", RECORDS_DAYS],
        ["dead", DEAD_DAYS],
      ] as const) {
        keptRecords.push(await record(status, days * DAY_MS - second));
        goneRecords.push(await record(status, days * DAY_MS + second));
      }
      for (const status of ["pending", "sending", "failed"]) {
        keptRecords.push(await record(status, 3_650 * DAY_MS));
      }
      const keptKey = await requestKey(RECORDS_DAYS * DAY_MS - second);
      const goneKey = await requestKey(RECORDS_DAYS * DAY_MS + second);

      const events = recordEvents(app);
      const deleted = await app.retention.runOnce();

      assert.deepEqual([...(await idsIn(app.route.table))].sort(), [...keptOutbox].sort());
      assert.deepEqual([...(await idsIn("notification_records"))].sort(), [...keptRecords].sort());
      const keys = await query<{ event_id: string }>(app, "select event_id from notification_request_keys");
      assert.deepEqual(
        keys.map((k) => k.event_id),
        [keptKey],
      );
      assert.ok(goneKey);
      const expected = {
        [app.route.table]: goneOutbox.length,
        notification_records: goneRecords.length,
        notification_request_keys: 1,
      };
      assert.deepEqual(deleted, expected);
      assert.deepEqual(events.of("retention:deleted"), [{ tables: expected }]);
    });

    test("dead rows outlive consumed and sent ones", async () => {
      await clear();
      const consumed = await outboxRow("consumed", 20 * DAY_MS);
      const deadRow = await outboxRow("dead", 20 * DAY_MS);
      const sent = await record("sent", 60 * DAY_MS);
      const deadRecord = await record("dead", 60 * DAY_MS);
      await app.retention.runOnce();
      assert.deepEqual([...(await idsIn(app.route.table))], [deadRow]);
      assert.deepEqual([...(await idsIn("notification_records"))], [deadRecord]);
      assert.ok(consumed && sent);
    });

    test("deletes in batches of at most RETENTION_BATCH_SIZE rows", async () => {
      await clear();
      for (let i = 0; i < 23; i += 1) await outboxRow("consumed", (CONSUMED_DAYS + 1) * DAY_MS);
      const store = createRetentionStore(app.db.kysely, app.db.traits);
      const batches: number[] = [];
      const counting: RetentionStore = {
        async deleteExpired(rule, cutoff, limit) {
          const result = await store.deleteExpired(rule, cutoff, limit);
          batches.push(result.deleted);
          return result;
        },
      };
      const job = createRetentionJob({
        store: counting,
        clock,
        logger: app.logger,
        events: app.events,
        options: {
          rules: [consumedRule()],
          intervalMs: 60_000,
          batchSize: 5,
          batchPauseMs: 0,
        },
      });
      assert.deepEqual(await job.runOnce(), { [app.route.table]: 23 });
      assert.deepEqual(batches, [5, 5, 5, 5, 3]);
      assert.equal((await idsIn(app.route.table)).size, 0);
    });

    test("two instances running at once delete each expired row once and nothing else", async () => {
      await clear();
      const kept = new Set<number>();
      for (let i = 0; i < 300; i += 1) {
        await outboxRow("consumed", (CONSUMED_DAYS + 1 + (i % 5)) * DAY_MS);
        await record("sent", (RECORDS_DAYS + 1 + (i % 7)) * DAY_MS);
        if (i % 10 === 0) kept.add(await outboxRow("consumed", DAY_MS));
      }
      const env = { ...retentionEnv, RETENTION_BATCH_SIZE: "20" };
      const [first, second] = await Promise.all([
        startApp(testEnv, { start: false, clock, env }),
        startApp(testEnv, { start: false, clock, env }),
      ]);
      assert.ok(first && second);
      try {
        const [a, b] = await Promise.all([first.retention.runOnce(), second.retention.runOnce()]);
        const total = (table: string) => (a[table] ?? 0) + (b[table] ?? 0);
        assert.equal(total(app.route.table), 300);
        assert.equal(total("notification_records"), 300);
        assert.deepEqual(await idsIn(app.route.table), kept);
        assert.equal((await idsIn("notification_records")).size, 0);
      } finally {
        await Promise.all([first.db.close(), second.db.close()]);
      }
    });

    test("run(signal) stops during its pause between batches when the signal aborts", {
      timeout: 30_000,
    }, async () => {
      await clear();
      for (let i = 0; i < 4; i += 1) await outboxRow("consumed", (CONSUMED_DAYS + 1) * DAY_MS);
      const store = createRetentionStore(app.db.kysely, app.db.traits);
      let batchDone: (() => void) | undefined;
      const firstBatch = new Promise<void>((resolve) => {
        batchDone = resolve;
      });
      const job = createRetentionJob({
        store: {
          async deleteExpired(rule, cutoff, limit) {
            const result = await store.deleteExpired(rule, cutoff, limit);
            batchDone?.();
            return result;
          },
        },
        clock,
        logger: app.logger,
        events: app.events,
        options: {
          rules: [consumedRule()],
          intervalMs: 600_000,
          batchSize: 1,
          batchPauseMs: 600_000,
        },
      });
      const events = recordEvents(app);
      const stop = new AbortController();
      const running = job.run(stop.signal);
      await firstBatch;
      stop.abort();
      await running;
      assert.equal((await idsIn(app.route.table)).size, 3, "the round ended after the batch in flight");
      assert.deepEqual(events.of("retention:deleted"), [{ tables: { [app.route.table]: 1 } }]);
    });
  });
}

/**
 * SmartFlow's Go services write `datetime` columns in their own zone (Asia/Shanghai here, written by MariaDB
 * itself): the cut-off must be compared in DATABASE_TIME_ZONE, or rows look 8 hours younger than they are.
 */
describe("retention turned off (sqlite+memory)", () => {
  test("with every kind kept forever the job waits for shutdown: the supervisor sees no failed loop", async () => {
    const testEnv = await createTestEnv("sqlite+memory", {
      RETENTION_CONSUMED_DAYS: "0",
      RETENTION_RECORDS_DAYS: "0",
      RETENTION_DEAD_DAYS: "0",
    });
    const app = await startApp(testEnv);
    try {
      // A loop that returned on its own is reported by the time start has resolved (the API's listen came after).
      const outcome = await Promise.race([
        app.loopFailed().then((failure) => `${failure.loop} failed: ${failure.error}`),
        new Promise<string>((resolve) => setImmediate(() => resolve("no loop failed"))),
      ]);
      assert.equal(outcome, "no loop failed");
    } finally {
      await app.stop();
      await testEnv.dispose();
    }
  });
});

describe("retention on mysql+kafka reads the Go tables' wall clock in DATABASE_TIME_ZONE", () => {
  let testEnv: TestEnv;
  let app: App;
  before(async () => {
    testEnv = await createTestEnv("mysql+kafka", { ...retentionEnv, DATABASE_TIME_ZONE: "Asia/Shanghai" });
    app = await startApp(testEnv, { start: false });
    await migrateToLatest(app.db.kysely, app.db.traits, { outbox: app.route.table });
  });
  after(async () => {
    await app.db.close();
    await testEnv.dispose();
  });

  test("an hour inside the retention stays; an hour past it goes", async () => {
    const database = testEnv.database;
    assert.ok(database);
    const insert = async (ageSeconds: number) => {
      const at = shanghai(-ageSeconds);
      await database.query(
        `insert into ${app.route.table} (biz_type, service_name, topic, message_key, payload, status,
          consumed_at, created_at, updated_at)
         values ('notification.feishu.requested', 'notification', ?, '1', '{}', 'consumed', ${at}, ${at}, ${at})`,
        [testEnv.topic],
      );
    };
    const keep = CONSUMED_DAYS * DAY;
    await insert(keep - 3_600);
    await insert(keep + 3_600);
    assert.deepEqual(await app.retention.runOnce(), { [app.route.table]: 1 });
    const left = await query<{ updated_at: string }>(app, `select updated_at from ${app.route.table}`);
    assert.equal(left.length, 1);
    const updated = app.db.traits.readTime(left[0]?.updated_at);
    assert.ok(updated);
    const age = Date.now() - updated.getTime();
    assert.ok(
      Math.abs(age - (keep - 3_600) * 1_000) < 600_000,
      `the kept row is the younger one (${age} ms)`,
    );
  });
});
