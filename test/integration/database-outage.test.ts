import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
} from "../../src/gen/grpc/health/v1/health_pb.ts";
import { FEISHU_REQUESTED_EVENT } from "../../src/notifications/feishu-requested-payload.ts";
import { rpcClient } from "../support/grpc-clients.ts";
import { feishuPayload, recordingHandler } from "../support/handlers.ts";
import { createTestEnv, outboxRows, recordEvents, startApp, type TestEnv } from "../support/harness.ts";
import { mysqlServerUrl } from "../support/mysql.ts";

/**
 * The database goes away (the service's account is locked and its connections killed) and comes back:
 * health says NOT_SERVING meanwhile, nothing is lost, and the pipeline resumes by itself.
 */
describe("the database goes away and comes back (MariaDB + Kafka)", () => {
  let testEnv: TestEnv;
  const user = `sfn_${randomBytes(4).toString("hex")}`;
  const password = randomBytes(8).toString("hex");
  before(async () => {
    testEnv = await createTestEnv("mysql+kafka", { HEALTH_CHECK_INTERVAL_MS: "50" });
  });
  after(async () => {
    await testEnv.dispose();
  });

  test("health turns NOT_SERVING, then SERVING; events written before the outage are consumed after it", async () => {
    const database = new URL(testEnv.env.DATABASE_URL ?? "").pathname.slice(1);
    const admin = await (await import("mysql2/promise")).createConnection({ uri: mysqlServerUrl });
    await admin.query(`create user '${user}'@'%' identified by '${password}'`);
    await admin.query(`create user '${user}'@'localhost' identified by '${password}'`);
    await admin.query(`grant all on \`${database}\`.* to '${user}'@'%'`);
    await admin.query(`grant all on \`${database}\`.* to '${user}'@'localhost'`);
    const url = new URL(testEnv.env.DATABASE_URL ?? "");
    url.username = user;
    url.password = password;
    const { calls, handler } = recordingHandler();
    const app = await startApp(testEnv, { handlers: [handler], env: { DATABASE_URL: url.toString() } });
    const events = recordEvents(app);
    const health = rpcClient(`127.0.0.1:${app.apiPort()}`);
    const status = async () =>
      (
        await health.unary(
          "/grpc.health.v1.Health/Check",
          HealthCheckRequestSchema,
          HealthCheckResponseSchema,
          {},
        )
      ).status;
    const enqueue = (previewId: string) =>
      app.db.kysely.transaction().execute((trx) =>
        app.enqueuer.enqueue(trx, {
          eventType: FEISHU_REQUESTED_EVENT,
          eventId: previewId,
          eventVersion: "1",
          messageKey: "5",
          payload: feishuPayload(5, previewId),
        }),
      );
    const lock = async (locked: boolean) => {
      for (const host of ["%", "localhost"]) {
        await admin.query(`alter user '${user}'@'${host}' account ${locked ? "lock" : "unlock"}`);
      }
      if (locked) {
        const [rows] = await admin.query(`select id from information_schema.processlist where user = ?`, [
          user,
        ]);
        for (const { id } of rows as { id: number }[]) await admin.query(`kill ${id}`).catch(() => undefined);
      }
    };
    const statuses: number[] = [];
    const watch = health.serverStream(
      "/grpc.health.v1.Health/Watch",
      HealthCheckRequestSchema,
      HealthCheckResponseSchema,
      {},
    );
    const changed = new Set<() => void>();
    watch.on("data", (message: { status: number }) => {
      statuses.push(message.status);
      for (const check of changed) check();
    });
    watch.on("error", () => undefined);
    const statusBecomes = (wanted: number, timeoutMs = 20_000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (statuses.at(-1) !== wanted) return;
          changed.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(
          () => reject(new Error(`health never became ${wanted}: ${statuses}`)),
          timeoutMs,
        );
        changed.add(check);
        check();
      });
    try {
      await statusBecomes(1);
      assert.equal(await status(), 1, "SERVING");
      const first = await enqueue("asp_before");
      await events.until("the first event is consumed", () =>
        events.of<{ consumed: number[] }>("consumer:outcomes").some((o) => o.consumed.includes(first)),
      );

      await lock(true);
      await statusBecomes(2);
      // While this service cannot reach the database, a producer (another service) writes an event.
      const envelope = JSON.stringify({
        event_id: "asp_during",
        event_type: FEISHU_REQUESTED_EVENT,
        event_version: "1",
        payload: feishuPayload(5, "asp_during"),
      });
      const [inserted] = await admin.query(
        `insert into \`${database}\`.${app.route.table} (biz_type, service_name, topic, message_key, payload, status,
          retry_count, max_retry, next_retry_at, created_at, updated_at)
          values (?, 'notification', ?, '5', ?, 'pending', 0, 20, now(3), now(3), now(3))`,
        [FEISHU_REQUESTED_EVENT, testEnv.topic, envelope],
      );
      const second = (inserted as { insertId: number }).insertId;
      const [pending] = await admin.query(
        `select status from \`${database}\`.${app.route.table} where id = ?`,
        [second],
      );
      assert.equal((pending as { status: string }[])[0]?.status, "pending");

      await lock(false);
      await statusBecomes(1);
      await events.until(
        "the event written during the outage is consumed",
        () => events.of<{ consumed: number[] }>("consumer:outcomes").some((o) => o.consumed.includes(second)),
        60_000,
      );
      const rows = await outboxRows(app, [first, second]);
      assert.deepEqual(
        rows.map((row) => row.status),
        ["consumed", "consumed"],
      );
      assert.deepEqual([...new Set(calls.map((c) => c.eventId))].sort(), ["asp_before", "asp_during"]);
      assert.deepEqual(
        statuses,
        [1, 2, 1],
        "SERVING, NOT_SERVING while the database was gone, SERVING again",
      );
      watch.cancel();
    } finally {
      health.close();
      await app.stop();
      await admin.query(`drop user if exists '${user}'@'%'`);
      await admin.query(`drop user if exists '${user}'@'localhost'`);
      await admin.end();
    }
  });
});
