import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { sql } from "kysely";
import type { App } from "../../src/app.ts";
import { migrateToLatest } from "../../src/db/migrations.ts";
import { withTimeout } from "../../src/lib/sleep.ts";
import { FEISHU_REQUESTED_EVENT } from "../../src/notifications/feishu-requested-payload.ts";
import { busFor } from "../support/buses.ts";
import { feishuPayload, recordingHandler } from "../support/handlers.ts";
import {
  createTestEnv,
  outboxRows,
  query,
  recordEvents,
  startApp,
  type TestEnv,
} from "../support/harness.ts";
import { readTopic } from "../support/kafka.ts";
import { createManualClock } from "../support/manual-clock.ts";

const run = promisify(execFile);
type Outcomes = { consumed: number[]; skipped: number[] };

async function enqueueMany(app: App, count: number, prefix: string) {
  const ids: number[] = [];
  await app.db.kysely.transaction().execute(async (trx) => {
    for (let i = 0; i < count; i++) {
      ids.push(
        await app.enqueuer.enqueue(trx, {
          eventType: FEISHU_REQUESTED_EVENT,
          eventId: `${prefix}_${i}`,
          eventVersion: "1",
          messageKey: String(1 + (i % 50)),
          payload: feishuPayload(1 + (i % 50), `${prefix}_${i}`),
        }),
      );
    }
  });
  return ids;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("port")),
      );
    });
  });
}

describe("outbox on mysql+kafka: several instances, broker outages, lost messages", () => {
  let testEnv: TestEnv;
  before(async () => {
    testEnv = await createTestEnv("mysql+kafka");
  });
  after(async () => {
    await testEnv.dispose();
  });

  test("6. two relays on one table publish each row exactly once", async () => {
    // Fill the table first (migrated, not started), then let two instances race over the backlog.
    const seed = await startApp(testEnv, { start: false });
    await migrateToLatest(seed.db.kysely, seed.db.traits, { outbox: seed.route.table });
    const ids = await enqueueMany(seed, 2_000, "race");
    await seed.db.close();

    const small = { OUTBOX_RELAY_BATCH_SIZE: "20" };
    const instances = await Promise.all([
      startApp(testEnv, { env: small }),
      startApp(testEnv, { env: small }),
    ]);
    const publishedBy = instances.map((instance) => {
      const published: number[] = [];
      instance.events.on("relay:published", (e) => published.push(...e.ids));
      return published;
    });
    try {
      const values = await readTopic(testEnv.topic, ids.length, 2_000);
      const outboxIds = values.map((v) => (JSON.parse(v) as { outbox_id: number }).outbox_id);
      assert.equal(outboxIds.length, ids.length, "no row was published twice");
      assert.deepEqual(new Set(outboxIds), new Set(ids), "every row was published");
      const [byFirst, bySecond] = publishedBy.map((published) => published.length);
      assert.ok(byFirst && bySecond, `both relays took part (${byFirst} + ${bySecond})`);
      assert.equal((byFirst ?? 0) + (bySecond ?? 0), ids.length);
    } finally {
      await Promise.all(instances.map((instance) => instance.stop()));
    }
  });

  test("7. with the broker down at startup rows stay pending, then flow once it comes up", async () => {
    const port = await freePort();
    const brokerDir = await mkdtemp(join(tmpdir(), "sfn-kafka-"));
    const { calls, handler } = recordingHandler();
    const app = await startApp(testEnv, {
      handlers: [handler],
      env: {
        KAFKA_BROKERS: `127.0.0.1:${port}`,
        KAFKA_CONNECT_TIMEOUT_MS: "300",
        OUTBOX_PUBLISH_TIMEOUT_MS: "2000",
      },
    });
    const events = recordEvents(app);
    try {
      const ids = await enqueueMany(app, 30, "outage");
      await events.until("the relay found the broker unavailable", () =>
        events.of<{ brokerUnavailable: boolean }>("relay:failed").some((e) => e.brokerUnavailable),
      );
      const rows = await outboxRows(app, ids);
      assert.ok(
        rows.every((row) => row.status === "pending" || row.status === "published"),
        "nothing is dead or lost",
      );
      const released = await outboxRows(app, ids);
      assert.ok(
        released.every((row) => row.retry_count === 0),
        "an outage does not spend the retry budget",
      );

      await run("scripts/kafka.sh", ["start", brokerDir], {
        env: { ...process.env, KAFKA_PORT: String(port) },
      });
      try {
        await events.until(
          "every row is consumed",
          () =>
            new Set(events.of<Outcomes>("consumer:outcomes").flatMap((o) => o.consumed)).size >= ids.length,
          90_000,
        );
        const after = await outboxRows(app, ids);
        assert.ok(after.every((row) => row.status === "consumed"));
        assert.equal(new Set(calls.map((c) => c.outboxId)).size, ids.length);
      } finally {
        await app.stop();
        await run("scripts/kafka.sh", ["stop", brokerDir]);
      }
    } finally {
      await app.stop();
      await rm(brokerDir, { recursive: true, force: true });
    }
  });

  test("8. a row stuck in published is re-queued by the sweeper and then consumed", async () => {
    const clock = createManualClock();
    const { calls, handler } = recordingHandler();
    const app = await startApp(testEnv, {
      handlers: [handler],
      clock,
      env: { OUTBOX_STALE_PUBLISHED_MS: "60000", OUTBOX_SWEEP_INTERVAL_MS: "20" },
    });
    const events = recordEvents(app);
    try {
      // A relay claimed this row and died before publishing it: `published`, but no message exists.
      const t = app.db.traits.time(clock.now());
      const envelope = JSON.stringify({
        event_id: "asp_stuck",
        event_type: FEISHU_REQUESTED_EVENT,
        event_version: "1",
        payload: feishuPayload(5, "asp_stuck"),
      });
      await query(
        app,
        sql`insert into ${sql.table(app.route.table)} (biz_type, service_name, topic, message_key, payload, status,
            retry_count, max_retry, next_retry_at, published_at, created_at, updated_at)
            values (${FEISHU_REQUESTED_EVENT}, 'notification', ${testEnv.topic}, '5', ${envelope}, 'published',
            0, 20, null, ${t}, ${t}, ${t})`,
      );
      const [stuck] = (await outboxRows(app)).slice(-1);
      assert.equal(stuck?.status, "published");
      clock.advance(61_000);
      await events.until("the sweeper re-queued it", () => events.of("sweeper:requeued").length > 0);
      clock.advance(2_000);
      await events.until("it is consumed", () =>
        events.of<Outcomes>("consumer:outcomes").some((o) => o.consumed.includes(stuck?.id ?? -1)),
      );
      const [row] = await outboxRows(app, [stuck?.id ?? -1]);
      assert.equal(row?.status, "consumed");
      assert.equal(row?.retry_count, 1, "the re-queue counts as an attempt");
      assert.ok(calls.some((c) => c.eventId === "asp_stuck"));
    } finally {
      await app.stop();
    }
  });

  test("9. a rebalance while a batch is in flight: the new owner handles it, the old owner's late outcome changes nothing", async () => {
    // A short session, so the group gives up on a member stuck in a batch within seconds (the default is 30 s).
    const sessionTimeoutMs = 6_000;
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started: () => void = () => undefined;
    const handling = new Promise<void>((resolve) => {
      started = resolve;
    });
    const first = recordingHandler(async (_event, call) => {
      if (call !== 1) return;
      started();
      await released;
    });
    const second = recordingHandler();
    const a = await startApp(testEnv, {
      handlers: [first.handler],
      bus: busFor("mysql+kafka", { sessionTimeoutMs }),
    });
    const aEvents = recordEvents(a);
    let b: App | undefined;
    try {
      await enqueueMany(a, 1, "rebalance");
      await withTimeout(handling, 30_000, "waiting for the first instance to handle the event");
      const id = first.calls[0]?.outboxId ?? -1;
      // A second member joins while the first is stuck in its batch (and so sends no heartbeat).
      b = await startApp(testEnv, {
        handlers: [second.handler],
        bus: busFor("mysql+kafka", { sessionTimeoutMs }),
      });
      const bEvents = recordEvents(b);
      await bEvents.until(
        "the new owner consumed the event",
        () => bEvents.of<Outcomes>("consumer:outcomes").some((o) => o.consumed.includes(id)),
        90_000,
      );
      assert.ok(
        second.calls.some((c) => c.outboxId === id),
        "redelivered to the new owner",
      );
      release();
      await aEvents.until("the old owner finished its batch", () =>
        aEvents.of<Outcomes>("consumer:outcomes").some((o) => o.consumed.includes(id)),
      );
      const [row] = await outboxRows(a, [id]);
      assert.deepEqual([row?.status, row?.retry_count], ["consumed", 0]);

      // Both members go on consuming.
      const later = await enqueueMany(a, 20, "after-rebalance");
      const both = recordEvents(a, b);
      const consumed = () => new Set(both.of<Outcomes>("consumer:outcomes").flatMap((o) => o.consumed));
      await both.until(
        "events after the rebalance are consumed",
        () => later.every((i) => consumed().has(i)),
        90_000,
      );
      assert.ok((await outboxRows(a, later)).every((r) => r.status === "consumed" && r.retry_count === 0));
    } finally {
      release();
      await Promise.all([a.stop(), b?.stop()]);
    }
  });
});
