import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import mysql from "mysql2/promise";
import type { App } from "../../src/app.ts";
import {
  RequestFeishuNotificationRequestSchema,
  RequestFeishuNotificationResponseSchema,
} from "../../src/gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import { FEISHU_REQUESTED_EVENT } from "../../src/notifications/feishu-requested-payload.ts";
import { type grpc, rpcClient } from "../support/grpc-clients.ts";
import { createTestEnv, query, recordEvents, startApp, type TestEnv } from "../support/harness.ts";

const OPS = "/smartflow.notification.v1.NotificationOpsService";
const CALLERS = 50;
const CALLS = 2_000;
const INSERTERS = 10;
const ROWS = 1_000;

type Outcomes = { consumed: readonly number[]; dead: readonly number[] };

/** Runs `count` jobs on `workers` concurrent workers; returns the errors, described. */
async function onWorkers(workers: number, count: number, job: (i: number) => Promise<unknown>) {
  const errors: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      for (let i = next++; i < count; i = next++) {
        try {
          await job(i);
        } catch (error) {
          const e = error as Partial<grpc.ServiceError>;
          errors.push(`${i}: ${e.code ?? ""} ${e.message ?? String(error)}`);
        }
      }
    }),
  );
  return errors;
}

/**
 * The whole write path at once on MariaDB + Kafka: 50 concurrent RequestFeishuNotification
 * callers (2,000 calls), SmartFlow's Go producers inserting outbox rows in their own sessions (1,000 rows,
 * REPEATABLE READ as a Go service's), while the relay claims, the consumer writes outcomes and records, and
 * the dispatcher writes results; the relay's batch is the default. Measured here before the change
 * (REPEATABLE READ, no retry): 16–36 of the 2,000 calls answered INTERNAL (deadlocks). With the RPCs'
 * retry alone, 39–179 of the Go producers' 1,000 inserts deadlocked (the relay's gap locks; nothing of ours
 * can retry their sessions). With READ COMMITTED (and the retry), none fails and every row ends consumed.
 */
describe("many concurrent writers on MariaDB + Kafka", () => {
  let testEnv: TestEnv;
  let app: App;
  let producers: mysql.Pool;
  before(async () => {
    testEnv = await createTestEnv("mysql+kafka");
    app = await startApp(testEnv);
    producers = mysql.createPool({ uri: testEnv.env.DATABASE_URL ?? "", connectionLimit: INSERTERS });
  });
  after(async () => {
    await producers.end();
    await app.stop();
    await testEnv.dispose();
  });

  test("2,000 RPC requests from 50 callers and 1,000 Go-format inserts, with relay and consumer running: 0 errors", async () => {
    const events = recordEvents(app);
    const client = rpcClient(`127.0.0.1:${app.apiPort()}`);
    const table = app.route.table;
    const now = new Date();
    const [rpcErrors, insertErrors] = await Promise.all([
      onWorkers(CALLERS, CALLS, (i) =>
        client.unary(
          `${OPS}/RequestFeishuNotification`,
          RequestFeishuNotificationRequestSchema,
          RequestFeishuNotificationResponseSchema,
          {
            eventId: `evt-load-${i}`,
            userId: BigInt(1 + (i % 200)),
            previewId: `asp_load_${i}`,
            triggerType: `load_${i % 7}`,
            targetUrl: `/assistant/conv_${i}`,
          },
          { deadlineMs: 60_000 },
        ),
      ),
      onWorkers(INSERTERS, ROWS, (i) => {
        const userId = 10_000 + (i % 100);
        const payload = JSON.stringify({
          event_id: `asp_go_${i}`,
          event_type: FEISHU_REQUESTED_EVENT,
          event_version: "1",
          aggregate_id: `asp_go_${i}`,
          payload: {
            user_id: userId,
            trigger_id: `ast_go_${i}`,
            preview_id: `asp_go_${i}`,
            trigger_type: "unfinished_feedback",
            target_type: "task",
            target_id: i,
            dedupe_key: `${userId}:go:${i}`,
            target_url: `/assistant/conv_go_${i}`,
            requested_at: now.toISOString(),
          },
        });
        return producers.query(
          `insert into ${table} (biz_type, service_name, topic, message_key, payload, status, retry_count, max_retry,
           next_retry_at, created_at, updated_at) values (?, 'notification', ?, ?, ?, 'pending', 0, 20, ?, ?, ?)`,
          [FEISHU_REQUESTED_EVENT, testEnv.topic, String(userId), payload, now, now, now],
        );
      }),
    ]);
    client.close();
    assert.deepEqual(rpcErrors, [], `${rpcErrors.length} of ${CALLS} calls failed`);
    assert.deepEqual(insertErrors, [], `${insertErrors.length} of ${ROWS} inserts failed`);

    const consumed = () =>
      events.of<Outcomes>("consumer:outcomes").reduce((sum, o) => sum + o.consumed.length, 0);
    await events.until(`all ${CALLS + ROWS} rows are consumed`, () => consumed() >= CALLS + ROWS, 120_000);
    const byStatus = await query<{ status: string; n: number }>(
      app,
      `select status, count(*) as n from ${table} group by status`,
    );
    assert.deepEqual(
      byStatus.map((row) => [row.status, Number(row.n)]),
      [["consumed", CALLS + ROWS]],
    );
    assert.deepEqual(
      events.of<Outcomes>("consumer:outcomes").flatMap((o) => o.dead),
      [],
    );
  });
});
