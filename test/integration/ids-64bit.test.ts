import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "kysely";
import type { App } from "../../src/app.ts";
import {
  GetNotificationRecordRequestSchema,
  GetNotificationRecordResponseSchema,
  ListNotificationRecordsRequestSchema,
  ListNotificationRecordsResponseSchema,
  ReplayOutboxMessagesRequestSchema,
  ReplayOutboxMessagesResponseSchema,
  RequestFeishuNotificationRequestSchema,
  RequestFeishuNotificationResponseSchema,
  RetryNotificationRecordRequestSchema,
  RetryNotificationRecordResponseSchema,
} from "../../src/gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import { FEISHU_REQUESTED_EVENT } from "../../src/notifications/feishu-requested-payload.ts";
import { feishuEnv } from "../support/delivery.ts";
import { type FakeFeishu, startFakeFeishu } from "../support/fake-feishu.ts";
import { errorDetails, grpc, legacyClient, rpcClient } from "../support/grpc-clients.ts";
import { backends, createTestEnv, query, recordEvents, startApp, type TestEnv } from "../support/harness.ts";

/**
 * SmartFlow's user and target ids are int64. Ids past 2^31 − 1 (where an INT column folded
 * them onto 2147483647) and past 2^53 (where a JavaScript number rounds them) are stored, read and sent as
 * themselves, end to end: a row in the Go producer's format, the records, the webhook body, both APIs.
 */
const INT32_MAX = 2_147_483_647n;
const INT64_MAX = 2n ** 63n - 1n;
const BIG_USERS = [2_147_483_648n, 5_000_000_000n, 2n ** 53n + 1n, INT64_MAX];
const OPS = "/smartflow.notification.v1.NotificationOpsService";

/** A payload as Go's encoding/json writes it: ids as JSON numbers, whatever their size. */
function goPayload(userId: bigint, targetId: bigint, previewId: string): string {
  return (
    `{"user_id":${userId},"trigger_id":"ast_${previewId}","preview_id":"${previewId}",` +
    `"trigger_type":"unfinished_feedback","target_type":"task","target_id":${targetId},` +
    `"dedupe_key":"${userId}:unfinished_feedback:2026-03-02T10:30:00+08:00",` +
    `"target_url":"/assistant/conv_${previewId}","requested_at":"2026-03-02T10:41:00+08:00"}`
  );
}

for (const backend of backends) {
  describe(`64-bit ids end to end (${backend})`, () => {
    let fake: FakeFeishu;
    let testEnv: TestEnv;
    let app: App;
    let legacy: ReturnType<typeof legacyClient>;
    let ops: ReturnType<typeof rpcClient>;
    let events: ReturnType<typeof recordEvents>;
    before(async () => {
      fake = await startFakeFeishu();
      testEnv = await createTestEnv(backend, feishuEnv(fake));
      app = await startApp(testEnv);
      events = recordEvents(app);
      legacy = legacyClient(`127.0.0.1:${app.apiPort()}`);
      ops = rpcClient(`127.0.0.1:${app.apiPort()}`);
    });
    after(async () => {
      legacy.close();
      ops.close();
      await app.stop();
      await fake.close();
      await testEnv.dispose();
    });

    const keyOf = (userId: bigint) => `id${userId}`;
    const save = (userId: bigint) =>
      legacy.call("SaveFeishuWebhook", {
        user_id: String(userId),
        enabled: true,
        webhook_url: fake.flowUrl(keyOf(userId)),
      });

    test("a Go-format row for each user past 2^31 is stored and sent to that user's webhook, ids exact", async () => {
      for (const userId of [INT32_MAX, ...BIG_USERS]) await save(userId);
      const table = sql.table(app.route.table);
      const now = app.db.traits.time(new Date());
      for (const [i, userId] of BIG_USERS.entries()) {
        const previewId = `asp_big_${backend.slice(0, 5)}_${i}`;
        const envelope = `{"event_id":"${previewId}","event_type":"${FEISHU_REQUESTED_EVENT}","event_version":"1","aggregate_id":"${previewId}","payload":${goPayload(userId, INT64_MAX - BigInt(i), previewId)}}`;
        await query(
          app,
          sql`insert into ${table} (biz_type, service_name, topic, message_key, payload, status, retry_count,
              max_retry, next_retry_at, created_at, updated_at)
              values (${FEISHU_REQUESTED_EVENT}, 'notification', ${testEnv.topic}, ${String(userId)}, ${envelope},
              'pending', 0, 20, ${now}, ${now}, ${now})`,
        );
      }
      for (const [i, userId] of BIG_USERS.entries()) {
        const [post] = await fake.waitForRequests(keyOf(userId), 1);
        assert.match(post?.raw ?? "", new RegExp(`"user_id":${userId},`), `user ${userId}'s body`);
        assert.match(post?.raw ?? "", new RegExp(`"target_id":${INT64_MAX - BigInt(i)},`));
      }
      const sent = () => events.of<{ status: string }>("delivery:result").filter((r) => r.status === "sent");
      await events.until("the four results are written", () => sent().length >= BIG_USERS.length);
      assert.equal(fake.requestsFor(keyOf(INT32_MAX)).length, 0, "2^31 − 1 got nobody else's notification");
      const rows = await query<{ user_id: string; target_id: string }>(
        app,
        "select cast(user_id as char) as user_id, cast(target_id as char) as target_id from notification_records order by user_id",
      );
      assert.deepEqual(
        rows.map((row) => [row.user_id, row.target_id]),
        BIG_USERS.map((userId, i) => [String(userId), String(INT64_MAX - BigInt(i))]),
      );
      const listed = await ops.unary(
        `${OPS}/ListNotificationRecords`,
        ListNotificationRecordsRequestSchema,
        ListNotificationRecordsResponseSchema,
        { userId: INT64_MAX },
      );
      assert.deepEqual(
        listed.records.map((r) => [r.userId, r.targetId, r.status]),
        [[INT64_MAX, INT64_MAX - 3n, 3]],
      );
    });

    test("RequestFeishuNotification with user_id and target_id 2^63 − 1 is delivered with both exact", async () => {
      const userId = INT64_MAX - 10n;
      await save(userId);
      const answer = await ops.unary(
        `${OPS}/RequestFeishuNotification`,
        RequestFeishuNotificationRequestSchema,
        RequestFeishuNotificationResponseSchema,
        {
          eventId: `evt-big-${backend}`,
          userId,
          previewId: "asp_big_rpc",
          triggerType: "manual",
          targetType: "task",
          targetId: INT64_MAX,
          targetUrl: "/assistant/conv_big",
        },
      );
      assert.match(answer.dedupeKey, new RegExp(`^${userId}:manual:`));
      const [post] = await fake.waitForRequests(keyOf(userId), 1);
      assert.match(post?.raw ?? "", new RegExp(`"user_id":${userId},`));
      assert.match(post?.raw ?? "", new RegExp(`"target_id":${INT64_MAX},`));
      const [row] = await query<{ payload: string }>(
        app,
        sql`select payload from ${sql.table(app.route.table)} where id = ${Number(answer.outboxId)}`,
      );
      assert.match(row?.payload ?? "", new RegExp(`"user_id":${userId},`), "the outbox row holds a number");
    });

    test("the ops service: ids up to 2^63 − 1 are accepted; record and outbox ids past 2^53 name nothing", async () => {
      for (const id of [2n ** 53n + 1n, INT64_MAX]) {
        const notFound = await ops
          .unary(
            `${OPS}/GetNotificationRecord`,
            GetNotificationRecordRequestSchema,
            GetNotificationRecordResponseSchema,
            { id },
          )
          .catch((error: grpc.ServiceError) => error);
        assert.equal((notFound as grpc.ServiceError).code, grpc.status.NOT_FOUND, String(id));
        const retried = await ops
          .unary(
            `${OPS}/RetryNotificationRecord`,
            RetryNotificationRecordRequestSchema,
            RetryNotificationRecordResponseSchema,
            { id },
          )
          .catch((error: grpc.ServiceError) => error);
        assert.equal((retried as grpc.ServiceError).code, grpc.status.NOT_FOUND, String(id));
        const replayed = await ops.unary(
          `${OPS}/ReplayOutboxMessages`,
          ReplayOutboxMessagesRequestSchema,
          ReplayOutboxMessagesResponseSchema,
          { selector: { case: "ids", value: { ids: [id] } } },
        );
        assert.equal(replayed.replayedCount, 0);
      }
      const none = await ops.unary(
        `${OPS}/ListNotificationRecords`,
        ListNotificationRecordsRequestSchema,
        ListNotificationRecordsResponseSchema,
        { userId: INT64_MAX - 1n },
      );
      assert.deepEqual(none.records, []);
      for (const userId of [0n, -1n, -(2n ** 63n)]) {
        const refused = await ops
          .unary(
            `${OPS}/ListNotificationRecords`,
            ListNotificationRecordsRequestSchema,
            ListNotificationRecordsResponseSchema,
            { userId },
          )
          .catch((error: grpc.ServiceError) => error);
        assert.equal((refused as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT, String(userId));
        assert.equal(errorDetails(refused).badRequest?.fieldViolations[0]?.field, "user_id");
      }
    });

    test("the legacy service: users 2^31 − 1 and 2^31 are two users; user_id <= 0 is unauthorized (40014)", async () => {
      await save(INT32_MAX);
      await save(INT32_MAX + 1n);
      const own = await legacy.call<{ webhook_url_mask: string }>("GetFeishuWebhook", {
        user_id: "2147483648",
      });
      assert.equal(own.webhook_url_mask, fake.flowUrl("id21...3648"));
      await legacy.call("DeleteFeishuWebhook", { user_id: "2147483648" });
      const kept = await legacy.call<{ webhook_url_mask: string }>("GetFeishuWebhook", {
        user_id: String(INT32_MAX),
      });
      assert.equal(kept.webhook_url_mask, fake.flowUrl("id21...3647"));
      const gone = await legacy.call<{ configured: boolean }>("GetFeishuWebhook", { user_id: "2147483648" });
      assert.equal(gone.configured, false);
      for (const userId of ["0", "-1", "-9223372036854775808"]) {
        const error = await legacy
          .call("GetFeishuWebhook", { user_id: userId })
          .catch((e: grpc.ServiceError) => e);
        assert.equal((error as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED, userId);
        assert.equal(errorDetails(error).errorInfo?.reason, "40014");
      }
    });
  });
}

describe("the MySQL session is strict and READ COMMITTED", () => {
  let testEnv: TestEnv;
  before(async () => {
    testEnv = await createTestEnv("mysql+kafka");
  });
  after(async () => {
    await testEnv.dispose();
  });

  test("every pooled connection has STRICT_TRANS_TABLES and READ-COMMITTED; nothing out of range is folded", async () => {
    const app = await startApp(testEnv, { start: false });
    try {
      await app.start();
      // Several connections at once, so the pool opens more than one.
      const sessions = await Promise.all(
        Array.from({ length: 4 }, () =>
          app.db.kysely.connection().execute(async (connection) => {
            const variable = async (name: string) =>
              (await sql<{ v: string }>`select ${sql.raw(`@@session.${name}`)} as v`.execute(connection))
                .rows[0]?.v;
            const isolation = await variable("transaction_isolation").catch(() => variable("tx_isolation"));
            return { mode: await variable("sql_mode"), isolation };
          }),
        ),
      );
      for (const session of sessions) {
        assert.match(session.mode ?? "", /STRICT_TRANS_TABLES/);
        assert.equal(session.isolation, "READ-COMMITTED");
      }
      await assert.rejects(
        query(
          app,
          "insert into user_notification_channels (user_id, channel, webhook_url, bearer_token) values (9223372036854775808, 'x', '', '')",
        ),
        /out of range/i,
      );
    } finally {
      await app.stop();
    }
  });
});
