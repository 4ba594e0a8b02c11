import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { sql } from "kysely";
import type { App } from "../../src/app.ts";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
} from "../../src/gen/grpc/health/v1/health_pb.ts";
import {
  GetNotificationRecordRequestSchema,
  GetNotificationRecordResponseSchema,
  GetStatsRequestSchema,
  GetStatsResponseSchema,
  ListDeadOutboxMessagesRequestSchema,
  ListDeadOutboxMessagesResponseSchema,
  ListNotificationRecordsRequestSchema,
  ListNotificationRecordsResponseSchema,
  RecordStatus,
  ReplayOutboxMessagesRequestSchema,
  ReplayOutboxMessagesResponseSchema,
  RequestFeishuNotificationRequestSchema,
  RequestFeishuNotificationResponseSchema,
  RetryNotificationRecordRequestSchema,
  RetryNotificationRecordResponseSchema,
} from "../../src/gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import { FEISHU_REQUESTED_EVENT } from "../../src/notifications/feishu-requested-payload.ts";
import { attemptOf, feishuEnv, givenChannel, recordOf, requestedPayload } from "../support/delivery.ts";
import { caFile, type FakeFeishu, startFakeFeishu } from "../support/fake-feishu.ts";
import { errorDetails, grpc, legacyClient, rpcClient } from "../support/grpc-clients.ts";
import {
  createTestEnv,
  outboxRows,
  query,
  recordEvents,
  startApp,
  type TestEnv,
} from "../support/harness.ts";

const run = promisify(execFile);
const OPS = "/smartflow.notification.v1.NotificationOpsService";
const TOKEN = "ops-token-3f1c";
const tls = (name: string) => new URL(`../fixtures/tls/${name}`, import.meta.url).pathname;

describe("the gRPC API on MariaDB + Kafka", () => {
  let fake: FakeFeishu;
  let testEnv: TestEnv;
  let app: App;
  let address: string;
  let events: ReturnType<typeof recordEvents>;
  before(async () => {
    fake = await startFakeFeishu();
    testEnv = await createTestEnv("mysql+kafka", { ...feishuEnv(fake), API_TOKEN: TOKEN });
    app = await startApp(testEnv);
    events = recordEvents(app);
    address = `127.0.0.1:${app.apiPort()}`;
  });
  after(async () => {
    await app.stop();
    await fake.close();
    await testEnv.dispose();
  });

  test("1. a grpc-js client built from the original proto gets the original semantics and ErrorInfo", async () => {
    const client = legacyClient(address);
    try {
      assert.deepEqual(await client.call("GetFeishuWebhook", { user_id: 301 }), {
        channel: "feishu_webhook",
        enabled: false,
        configured: false,
        webhook_url_mask: "",
        auth_type: "none",
        has_bearer_token: false,
        last_test_status: "",
        last_test_error: "",
        last_test_at_unix_nano: "0",
      });

      const unauthorized = await client.call("GetFeishuWebhook", { user_id: 0 }).catch((e: unknown) => e);
      assert.equal((unauthorized as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED);
      const info = errorDetails(unauthorized).errorInfo;
      assert.equal(info?.domain, "smartflow.notification");
      assert.equal(info?.reason, "40014");
      assert.equal(info?.metadata.info, (unauthorized as grpc.ServiceError).details);

      const saved = await client.call("SaveFeishuWebhook", {
        user_id: 301,
        enabled: true,
        webhook_url: `  ${fake.flowUrl("flowkey0301")}  `,
        auth_type: " BEARER ",
        bearer_token: "tok-301",
      });
      assert.equal(saved.configured, true);
      assert.equal(saved.auth_type, "bearer");
      assert.equal(saved.has_bearer_token, true);
      assert.equal(saved.webhook_url_mask, `${fake.origin}/flow/api/trigger-webhook/flow...0301`);
      assert.ok(!JSON.stringify(saved).includes("tok-301"), "the token is never returned");
      assert.deepEqual(await client.call("GetFeishuWebhook", { user_id: 301 }), saved);

      const tested = await client.call<{
        status: string;
        outcome: string;
        provider: string;
        skipped: boolean;
        sent_at_unix_nano: string;
        channel: { last_test_status: string };
      }>("TestFeishuWebhook", { user_id: 301 });
      assert.deepEqual(
        [tested.status, tested.outcome, tested.provider, tested.skipped],
        ["success", "success", "feishu", false],
      );
      assert.equal(tested.channel.last_test_status, "success");
      assert.ok(BigInt(tested.sent_at_unix_nano) > 0n);
      const [testRequest] = fake.requestsFor("flowkey0301");
      assert.equal(testRequest?.headers.authorization, "Bearer tok-301");
      assert.equal(testRequest?.body.trigger_type, "manual_test");

      fake.script("flowkey0301", { status: 500, body: "boom" });
      const failedTest = await client.call<{ status: string; outcome: string; message: string }>(
        "TestFeishuWebhook",
        { user_id: 301 },
      );
      assert.deepEqual([failedTest.status, failedTest.outcome], ["failed", "temporary_fail"]);
      assert.match(failedTest.message, /HTTP 500/);

      assert.deepEqual(await client.call("DeleteFeishuWebhook", { user_id: 301 }), {});
      assert.deepEqual(
        await client.call("DeleteFeishuWebhook", { user_id: 301 }),
        {},
        "delete is idempotent",
      );
      assert.equal(
        (await client.call<{ configured: boolean }>("GetFeishuWebhook", { user_id: 301 })).configured,
        false,
      );
      const skipped = await client.call<{
        status: string;
        outcome: string;
        message: string;
        skipped: boolean;
      }>("TestFeishuWebhook", { user_id: 301 });
      assert.deepEqual(
        [skipped.status, skipped.outcome, skipped.skipped, skipped.message],
        ["failed", "skipped", true, "用户未配置飞书 Webhook 触发器"],
      );
    } finally {
      client.close();
    }
  });

  test("a slow webhook is a classified provider_timeout inside the RPC deadline; a short client deadline wins", async () => {
    const client = legacyClient(address);
    try {
      await client.call("SaveFeishuWebhook", {
        user_id: 302,
        enabled: true,
        webhook_url: fake.flowUrl("flowkey0302"),
        auth_type: "none",
      });
      fake.script("flowkey0302", { hang: true }, { hang: true });
      const slow = await client.call<{ status: string; outcome: string; message: string }>(
        "TestFeishuWebhook",
        { user_id: 302 },
      );
      assert.deepEqual([slow.status, slow.outcome], ["failed", "temporary_fail"]);
      assert.match(slow.message, /no response within 1000 ms/);
      const started = Date.now();
      const late = await client
        .call("TestFeishuWebhook", { user_id: 302 }, { deadlineMs: 300 })
        .catch((e: unknown) => e);
      assert.equal((late as grpc.ServiceError).code, grpc.status.DEADLINE_EXCEEDED);
      assert.ok(Date.now() - started < 900, "answered at the deadline, not after the webhook timeout");
    } finally {
      client.close();
    }
  });

  test("2. buf curl lists the services through reflection and calls over grpc, connect and grpcweb", async () => {
    const buf = (...args: string[]) => run("npx", ["buf", "curl", ...args], { timeout: 60_000 });
    const base = `http://${address}`;
    const { stdout: services } = await buf("--list-services", base);
    assert.deepEqual(services.trim().split("\n").sort(), [
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "smartflow.notification.Notification",
      "smartflow.notification.v1.NotificationOpsService",
    ]);
    const { stdout: methods } = await buf("--list-methods", base);
    assert.match(methods, /smartflow\.notification\.v1\.NotificationOpsService\/RequestFeishuNotification/);
    await givenChannel(app, 303, fake.botUrl("botkey000303"));
    for (const protocol of ["grpc", "connect", "grpcweb"]) {
      const { stdout } = await buf(
        "--protocol",
        protocol,
        "-d",
        '{"user_id": 303}',
        `${base}/smartflow.notification.Notification/GetFeishuWebhook`,
      );
      const body = JSON.parse(stdout) as { webhookKind: string; configured: boolean };
      assert.deepEqual([body.configured, body.webhookKind], [true, "group_bot"], protocol);
      const { stdout: healthOut } = await buf("--protocol", protocol, `${base}/grpc.health.v1.Health/Check`);
      assert.deepEqual(JSON.parse(healthOut), { status: "SERVING" }, `health over ${protocol}`);
      const { stdout: stats } = await buf(
        "--protocol",
        protocol,
        "-H",
        `authorization: Bearer ${TOKEN}`,
        `${base}${OPS}/GetStats`,
      );
      assert.match(
        String((JSON.parse(stats) as { oldestPendingAge?: unknown }).oldestPendingAge),
        /^\d+(\.\d+)?s$/,
        protocol,
      );
    }
    const failure = await buf(
      "--protocol",
      "connect",
      "-d",
      '{"user_id": 0}',
      `${base}/smartflow.notification.Notification/GetFeishuWebhook`,
    ).catch((e: { stdout: string; stderr: string }) => e);
    const { stdout: out, stderr: err } = failure as { stdout: string; stderr: string };
    assert.match(`${out}${err}`, /"reason": "40014"/);
  });

  test("5. every RPC answers invalid input with the documented code and field", async () => {
    const legacy = legacyClient(address);
    const ops = rpcClient(address);
    const auth = { token: TOKEN };
    try {
      const legacyCases: [string, object, number, string][] = [
        ["GetFeishuWebhook", { user_id: 0 }, grpc.status.UNAUTHENTICATED, "40014"],
        [
          "SaveFeishuWebhook",
          { user_id: -5, webhook_url: fake.flowUrl("flowkey0305") },
          grpc.status.UNAUTHENTICATED,
          "40014",
        ],
        ["SaveFeishuWebhook", { user_id: 305, webhook_url: "   " }, grpc.status.INVALID_ARGUMENT, "40004"],
        [
          "SaveFeishuWebhook",
          { user_id: 305, webhook_url: "http://www.feishu.cn/flow/api/trigger-webhook/abcdefgh1" },
          grpc.status.INVALID_ARGUMENT,
          "40005",
        ],
        [
          "SaveFeishuWebhook",
          { user_id: 305, webhook_url: "https://evil.example/flow/api/trigger-webhook/abcdefgh1" },
          grpc.status.INVALID_ARGUMENT,
          "40005",
        ],
        [
          "SaveFeishuWebhook",
          { user_id: 305, webhook_url: "https://www.feishu.cn/flow/api/trigger-webhook/" },
          grpc.status.INVALID_ARGUMENT,
          "40005",
        ],
        [
          "SaveFeishuWebhook",
          { user_id: 305, webhook_url: fake.flowUrl("flowkey0305"), auth_type: "bearer" },
          grpc.status.INVALID_ARGUMENT,
          "40004",
        ],
        ["DeleteFeishuWebhook", { user_id: 0 }, grpc.status.UNAUTHENTICATED, "40014"],
        ["TestFeishuWebhook", { user_id: -1 }, grpc.status.UNAUTHENTICATED, "40014"],
      ];
      const goInfo: Record<string, string> = {
        "40014": "unauthorized",
        "40004": "missing param",
        "40005": "wrong param type",
      };
      for (const [method, request, code, reason] of legacyCases) {
        const what = `${method} ${JSON.stringify(request)}`;
        const error = await legacy.call(method, request).catch((e: unknown) => e);
        assert.equal((error as grpc.ServiceError).code, code, what);
        const { errorInfo, badRequest } = errorDetails(error);
        assert.equal(errorInfo?.reason, reason, what);
        assert.equal((error as grpc.ServiceError).details, goInfo[reason], `${what}: Go's message`);
        assert.equal(errorInfo?.metadata.info, goInfo[reason], what);
        assert.ok(badRequest?.fieldViolations[0]?.description, `${what}: our words in BadRequest`);
      }

      const expectField = async (
        promise: Promise<unknown>,
        code: number,
        field: string | undefined,
        what: string,
      ) => {
        const error = await promise.then(
          () => assert.fail(`${what}: expected an error`),
          (e: unknown) => e,
        );
        assert.equal((error as grpc.ServiceError).code, code, `${what}: ${(error as Error).message}`);
        if (field) assert.equal(errorDetails(error).badRequest?.fieldViolations[0]?.field, field, what);
      };
      const INVALID = grpc.status.INVALID_ARGUMENT;
      const list = (request: object) =>
        ops.unary(
          `${OPS}/ListNotificationRecords`,
          ListNotificationRecordsRequestSchema,
          ListNotificationRecordsResponseSchema,
          request,
          auth,
        );
      await expectField(list({ userId: 0n }), INVALID, "user_id", "list without user");
      await expectField(list({ userId: 1n, pageSize: 501 }), INVALID, "page_size", "list page too large");
      await expectField(
        list({ userId: 1n, pageToken: "not-a-token" }),
        INVALID,
        "page_token",
        "list bad token",
      );
      await expectField(
        list({ userId: 1n, status: 99 as RecordStatus }),
        INVALID,
        "status",
        "list bad status",
      );
      const get = (id: bigint) =>
        ops.unary(
          `${OPS}/GetNotificationRecord`,
          GetNotificationRecordRequestSchema,
          GetNotificationRecordResponseSchema,
          { id },
          auth,
        );
      await expectField(get(0n), INVALID, "id", "get id 0");
      await expectField(get(987_654_321n), grpc.status.NOT_FOUND, undefined, "get missing");
      const retry = (id: bigint) =>
        ops.unary(
          `${OPS}/RetryNotificationRecord`,
          RetryNotificationRecordRequestSchema,
          RetryNotificationRecordResponseSchema,
          { id },
          auth,
        );
      await expectField(retry(-3n), INVALID, "id", "retry negative id");
      await expectField(retry(987_654_321n), grpc.status.NOT_FOUND, undefined, "retry missing");
      const dead = (request: object) =>
        ops.unary(
          `${OPS}/ListDeadOutboxMessages`,
          ListDeadOutboxMessagesRequestSchema,
          ListDeadOutboxMessagesResponseSchema,
          request,
          auth,
        );
      await expectField(dead({ pageSize: -1 }), INVALID, "page_size", "dead negative page");
      const replay = (request: object) =>
        ops.unary(
          `${OPS}/ReplayOutboxMessages`,
          ReplayOutboxMessagesRequestSchema,
          ReplayOutboxMessagesResponseSchema,
          request,
          auth,
        );
      await expectField(replay({}), INVALID, "selector", "replay without selector");
      await expectField(
        replay({ selector: { case: "ids", value: { ids: [] } } }),
        INVALID,
        "ids.ids",
        "replay no ids",
      );
      await expectField(
        replay({ selector: { case: "ids", value: { ids: [0n] } } }),
        INVALID,
        "ids.ids",
        "replay id 0",
      );
      await expectField(
        replay({ selector: { case: "filter", value: { limit: 20_000 } } }),
        INVALID,
        "filter.limit",
        "replay big limit",
      );
      const requestNotification = (request: object) =>
        ops.unary(
          `${OPS}/RequestFeishuNotification`,
          RequestFeishuNotificationRequestSchema,
          RequestFeishuNotificationResponseSchema,
          request,
          auth,
        );
      const valid = {
        eventId: "evt-invalid",
        userId: 305n,
        previewId: "asp_305",
        triggerType: "t",
        dedupeKey: "k305",
        targetUrl: "/assistant/x",
      };
      await expectField(
        requestNotification({ ...valid, eventId: " " }),
        INVALID,
        "event_id",
        "request without event id",
      );
      await expectField(
        requestNotification({ ...valid, userId: 0n }),
        INVALID,
        "user_id",
        "request without user",
      );
      await expectField(
        requestNotification({ ...valid, previewId: "" }),
        INVALID,
        "preview_id",
        "request without preview",
      );
      await expectField(
        requestNotification({ ...valid, targetUrl: "https://evil.example/x" }),
        INVALID,
        "target_url",
        "request bad url",
      );
      await expectField(
        requestNotification({ ...valid, dedupeKey: "", triggerType: "" }),
        INVALID,
        "dedupe_key",
        "request without any dedupe key",
      );

      // Bytes that are not the request message: a clear error, and the server keeps serving.
      const garbage = await ops
        .raw(`${OPS}/GetStats`, Buffer.from([0xff, 0xff, 0xff, 0xff]))
        .catch((e: unknown) => e);
      assert.equal((garbage as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED, "auth is checked first");
      const garbageLegacy = await ops
        .raw("/smartflow.notification.Notification/GetFeishuWebhook", Buffer.from([0x08, 0xff]))
        .catch((e: unknown) => e);
      assert.equal((garbageLegacy as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT);
      assert.match(
        (garbageLegacy as grpc.ServiceError).details,
        /not a valid smartflow.notification.GetFeishuWebhookRequest/,
      );
      const unknown = await ops
        .raw("/smartflow.notification.Notification/NoSuchMethod", Buffer.alloc(0))
        .catch((e: unknown) => e);
      assert.equal((unknown as grpc.ServiceError).code, grpc.status.UNIMPLEMENTED);
      assert.equal(
        (await legacy.call<{ configured: boolean }>("GetFeishuWebhook", { user_id: 305 })).configured,
        false,
      );
    } finally {
      legacy.close();
      ops.close();
    }
  });

  test("6. the operations service rejects calls without the configured token", async () => {
    const ops = rpcClient(address);
    try {
      for (const token of [undefined, "wrong-token"]) {
        const error = await ops
          .unary(`${OPS}/GetStats`, GetStatsRequestSchema, GetStatsResponseSchema, {}, token ? { token } : {})
          .catch((e: unknown) => e);
        assert.equal((error as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED, String(token));
      }
      const stats = await ops.unary(
        `${OPS}/GetStats`,
        GetStatsRequestSchema,
        GetStatsResponseSchema,
        {},
        { token: TOKEN },
      );
      assert.ok(stats.outboxByStatus);
      const legacy = legacyClient(address);
      await legacy.call("GetFeishuWebhook", { user_id: 306 });
      legacy.close();
    } finally {
      ops.close();
    }
  });

  test("7. a dead outbox message replayed through the RPC is delivered", async () => {
    const ops = rpcClient(address);
    try {
      await givenChannel(app, 307, fake.flowUrl("flowkey0307"));
      // A valid event that died while something was broken (say, a long broker outage).
      const envelope = JSON.stringify({
        event_id: "asp_307",
        event_type: FEISHU_REQUESTED_EVENT,
        event_version: "1",
        payload: requestedPayload(307, "asp_307"),
      });
      const now = app.db.traits.time(new Date());
      await query(
        app,
        sql`insert into ${sql.table(app.route.table)} (biz_type, service_name, topic, message_key, payload, status, retry_count,
            max_retry, last_error, created_at, updated_at) values (${FEISHU_REQUESTED_EVENT}, 'notification', ${testEnv.topic},
            '307', ${envelope}, 'dead', 20, 20, 'publish failed: broker down', ${now}, ${now})`,
      );
      const listed = await ops.unary(
        `${OPS}/ListDeadOutboxMessages`,
        ListDeadOutboxMessagesRequestSchema,
        ListDeadOutboxMessagesResponseSchema,
        { eventType: FEISHU_REQUESTED_EVENT },
        { token: TOKEN },
      );
      const message = listed.messages.find((m) => m.payloadJson.includes("asp_307"));
      assert.ok(message, "the dead message is listed");
      assert.equal(message.lastError, "publish failed: broker down");
      const replayed = await ops.unary(
        `${OPS}/ReplayOutboxMessages`,
        ReplayOutboxMessagesRequestSchema,
        ReplayOutboxMessagesResponseSchema,
        { selector: { case: "ids", value: { ids: [message.id] } }, reason: "broker is back (ticket 42)" },
        { token: TOKEN },
      );
      assert.deepEqual(replayed.ids, [message.id]);
      const recordId = await recordOf(events, Number(message.id));
      assert.equal((await attemptOf(events, recordId)).status, "sent");
      assert.equal(fake.requestsFor("flowkey0307").length, 1);
      // The send may finish before the consumer's outcome transaction commits: await the outcome.
      await events.until("the replayed row is consumed", () =>
        events
          .of<{ consumed: readonly number[] }>("consumer:outcomes")
          .some((o) => o.consumed.includes(Number(message.id))),
      );
      const [row] = await outboxRows(app, [Number(message.id)]);
      assert.equal(row?.status, "consumed");

      const again = await ops.unary(
        `${OPS}/ReplayOutboxMessages`,
        ReplayOutboxMessagesRequestSchema,
        ReplayOutboxMessagesResponseSchema,
        { selector: { case: "ids", value: { ids: [message.id] } } },
        { token: TOKEN },
      );
      assert.equal(again.replayedCount, 0, "only dead messages are replayed");

      const record = await ops.unary(
        `${OPS}/GetNotificationRecord`,
        GetNotificationRecordRequestSchema,
        GetNotificationRecordResponseSchema,
        { id: BigInt(recordId) },
        { token: TOKEN },
      );
      assert.equal(record.record?.status, RecordStatus.SENT);
      const notRetryable = await ops
        .unary(
          `${OPS}/RetryNotificationRecord`,
          RetryNotificationRecordRequestSchema,
          RetryNotificationRecordResponseSchema,
          { id: BigInt(recordId) },
          { token: TOKEN },
        )
        .catch((e: unknown) => e);
      assert.equal((notRetryable as grpc.ServiceError).code, grpc.status.FAILED_PRECONDITION);
    } finally {
      ops.close();
    }
  });

  test("8. a notification requested through the RPC is delivered once, and its event_id is idempotent", async () => {
    const ops = rpcClient(address);
    try {
      await givenChannel(app, 308, fake.flowUrl("flowkey0308"));
      const request = {
        eventId: "evt-308",
        userId: 308n,
        triggerId: "ast_308",
        previewId: "asp_308",
        triggerType: "unfinished_feedback",
        targetType: "task",
        targetId: 9n,
        targetUrl: "/assistant/conv_308",
        summaryText: "请确认明天的日程调整",
      };
      const call = () =>
        ops.unary(
          `${OPS}/RequestFeishuNotification`,
          RequestFeishuNotificationRequestSchema,
          RequestFeishuNotificationResponseSchema,
          request,
          { token: TOKEN },
        );
      const first = await call();
      assert.equal(first.duplicate, false);
      assert.match(
        first.dedupeKey,
        /^308:unfinished_feedback:\d{4}-\d\d-\d\dT\d\d:(00|30):00(Z|[+-]\d\d:\d\d)$/,
      );
      const recordId = await recordOf(events, Number(first.outboxId));
      assert.equal((await attemptOf(events, recordId)).status, "sent");
      const before = (await outboxRows(app)).length;
      const second = await call();
      assert.deepEqual([second.duplicate, second.outboxId], [true, first.outboxId]);
      assert.equal((await outboxRows(app)).length, before, "nothing new was written");
      assert.equal(fake.requestsFor("flowkey0308").length, 1);
      const [post] = fake.requestsFor("flowkey0308");
      assert.ok(post);
      assert.match(String((post.body.message as { summary: string }).summary), /请确认明天的日程调整/);

      const listed = await ops.unary(
        `${OPS}/ListNotificationRecords`,
        ListNotificationRecordsRequestSchema,
        ListNotificationRecordsResponseSchema,
        { userId: 308n, status: RecordStatus.SENT, pageSize: 1 },
        { token: TOKEN },
      );
      assert.equal(listed.records[0]?.id, BigInt(recordId));
      assert.ok(listed.nextPageToken, "a full page has a cursor");
      const next = await ops.unary(
        `${OPS}/ListNotificationRecords`,
        ListNotificationRecordsRequestSchema,
        ListNotificationRecordsResponseSchema,
        { userId: 308n, pageSize: 1, pageToken: listed.nextPageToken },
        { token: TOKEN },
      );
      assert.equal(next.records.length, 0);
      const stats = await ops.unary(
        `${OPS}/GetStats`,
        GetStatsRequestSchema,
        GetStatsResponseSchema,
        {},
        { token: TOKEN },
      );
      assert.ok((stats.recordsByStatus.sent ?? 0n) >= 1n);
      assert.ok((stats.outboxByStatus.consumed ?? 0n) >= 1n);
    } finally {
      ops.close();
    }
  });
});

describe("the API's health, TLS and mTLS (SQLite + in-process bus)", () => {
  test("4. health is SERVING, then NOT_SERVING as soon as shutdown begins", async () => {
    const testEnv = await createTestEnv("sqlite+memory");
    const app = await startApp(testEnv);
    const client = rpcClient(`127.0.0.1:${app.apiPort()}`);
    try {
      const check = await client.unary(
        "/grpc.health.v1.Health/Check",
        HealthCheckRequestSchema,
        HealthCheckResponseSchema,
        {},
      );
      assert.equal(check.status, 1, "SERVING");
      const unknown = await client
        .unary("/grpc.health.v1.Health/Check", HealthCheckRequestSchema, HealthCheckResponseSchema, {
          service: "nope",
        })
        .catch((e: unknown) => e);
      assert.equal((unknown as grpc.ServiceError).code, grpc.status.NOT_FOUND);
      const statuses: number[] = [];
      const stream = client.serverStream(
        "/grpc.health.v1.Health/Watch",
        HealthCheckRequestSchema,
        HealthCheckResponseSchema,
        {
          service: "smartflow.notification.Notification",
        },
      );
      const ended = new Promise<void>((resolve) => {
        stream.on("data", (message: { status: number }) => statuses.push(message.status));
        stream.on("error", () => resolve());
        stream.on("end", () => resolve());
      });
      await new Promise<void>((resolve) => stream.once("data", () => resolve()));
      await app.stop();
      await ended;
      assert.deepEqual(statuses, [1, 2], "SERVING, then NOT_SERVING");
    } finally {
      client.close();
      await app.stop();
      await testEnv.dispose();
    }
  });

  test("TLS serves gRPC and Connect; with a client CA, only clients with a certificate get in", async () => {
    const testEnv = await createTestEnv("sqlite+memory", {
      TLS_CERT_FILE: tls("cert.pem"),
      TLS_KEY_FILE: tls("key.pem"),
    });
    const app = await startApp(testEnv);
    const mtlsApp = await startApp(testEnv, {
      env: { DATABASE_URL: "sqlite::memory:", TLS_CLIENT_CA_FILE: tls("client-ca.pem") },
    });
    const ca = readFileSync(caFile);
    try {
      const secure = legacyClient(`127.0.0.1:${app.apiPort()}`, grpc.credentials.createSsl(ca));
      assert.equal(
        (await secure.call<{ channel: string }>("GetFeishuWebhook", { user_id: 1 })).channel,
        "feishu_webhook",
      );
      secure.close();
      const { stdout } = await run("npx", [
        "buf",
        "curl",
        "--cacert",
        caFile,
        "-d",
        '{"user_id": 1}',
        `https://127.0.0.1:${app.apiPort()}/smartflow.notification.Notification/GetFeishuWebhook`,
      ]);
      assert.match(stdout, /feishu_webhook/);

      const anonymous = legacyClient(`127.0.0.1:${mtlsApp.apiPort()}`, grpc.credentials.createSsl(ca));
      const refused = await anonymous
        .call("GetFeishuWebhook", { user_id: 1 }, { deadlineMs: 3_000 })
        .catch((e: unknown) => e);
      assert.equal((refused as grpc.ServiceError).code, grpc.status.UNAVAILABLE);
      anonymous.close();
      const withCert = legacyClient(
        `127.0.0.1:${mtlsApp.apiPort()}`,
        grpc.credentials.createSsl(ca, readFileSync(tls("client-key.pem")), readFileSync(tls("client.pem"))),
      );
      assert.equal(
        (await withCert.call<{ channel: string }>("GetFeishuWebhook", { user_id: 1 })).channel,
        "feishu_webhook",
      );
      withCert.close();
    } finally {
      await Promise.all([app.stop(), mtlsApp.stop()]);
      await testEnv.dispose();
    }
  });
});
