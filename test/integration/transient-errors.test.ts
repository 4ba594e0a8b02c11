import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import mysql from "mysql2/promise";
import type { App } from "../../src/app.ts";
import {
  GetStatsRequestSchema,
  GetStatsResponseSchema,
  RequestFeishuNotificationRequestSchema,
  RequestFeishuNotificationResponseSchema,
} from "../../src/gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import { errorDetails, grpc, legacyClient, rpcClient } from "../support/grpc-clients.ts";
import { createTestEnv, query, startApp, type TestEnv } from "../support/harness.ts";
import { startTcpProxy } from "../support/tcp-proxy.ts";

const OPS = "/smartflow.notification.v1.NotificationOpsService";
const flowUrl = (key: string) => `https://www.feishu.cn/flow/api/trigger-webhook/${key}`;

/** Polls the server (not a clock) until `check` holds: the state another session is in. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A deadlock, a lost connection and an unreachable database, met by RPCs that write and
 * read, on MariaDB. The service's database connection goes through a TCP proxy the test can cut; the
 * deadlock is a real one, between the RPC's transaction and a session of the test.
 */
describe("transient database errors reach no caller as INTERNAL (MariaDB)", () => {
  let testEnv: TestEnv;
  let proxy: Awaited<ReturnType<typeof startTcpProxy>>;
  let app: App;
  let other: mysql.Connection;
  let legacy: ReturnType<typeof legacyClient>;
  let ops: ReturnType<typeof rpcClient>;
  before(async () => {
    testEnv = await createTestEnv("mysql+kafka");
    const direct = new URL(testEnv.env.DATABASE_URL ?? "");
    proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 3306) });
    const proxied = new URL(direct);
    proxied.port = String(proxy.port);
    app = await startApp(testEnv, { env: { DATABASE_URL: proxied.toString() } });
    other = await mysql.createConnection({ uri: direct.toString() });
    legacy = legacyClient(`127.0.0.1:${app.apiPort()}`);
    ops = rpcClient(`127.0.0.1:${app.apiPort()}`);
  });
  after(async () => {
    legacy.close();
    ops.close();
    await other.end();
    await app.stop();
    await proxy.close();
    await testEnv.dispose();
  });

  const processlist = async (like: string) => {
    const [rows] = await other.query(
      "select id from information_schema.processlist where db = database() and info like ?",
      [like],
    );
    return rows as { id: number }[];
  };

  test("RequestFeishuNotification's transaction, chosen as a deadlock's victim, is run again and the call succeeds", async () => {
    // The test's session takes the request key first (and weighs more, so InnoDB rolls the RPC back).
    await other.query("create table ballast (id int primary key)");
    await other.query("begin");
    await other.query(
      `insert into ballast (id) values ${Array.from({ length: 200 }, (_, i) => `(${i})`).join(",")}`,
    );
    await other.query(
      "insert into notification_request_keys (event_id, outbox_id, dedupe_key) values ('evt-deadlock', 0, 'x')",
    );
    const call = ops.unary(
      `${OPS}/RequestFeishuNotification`,
      RequestFeishuNotificationRequestSchema,
      RequestFeishuNotificationResponseSchema,
      {
        eventId: "evt-deadlock",
        userId: 77n,
        previewId: "asp_deadlock",
        triggerType: "manual",
        targetUrl: "/assistant/conv_deadlock",
      },
    );
    // The RPC inserted its outbox row and waits for the key the test holds...
    await until(
      "the RPC waits for the key",
      async () => (await processlist("insert into `notification_request_keys`%")).length > 0,
    );
    // ...and the test now waits for that outbox row: a deadlock. Its statement returns only once the RPC's
    // transaction was rolled back (it cannot commit while it waits for the test's key).
    await other.query(`select id from ${app.route.table} for update`);
    await other.query("rollback");
    const answer = await call;
    assert.equal(answer.duplicate, false);
    const rows = await query<{ id: number }>(app, `select id from ${app.route.table}`);
    assert.deepEqual(
      rows.map((row) => Number(row.id)),
      [Number(answer.outboxId)],
      "the rolled-back attempt left nothing",
    );
  });

  test("SaveFeishuWebhook whose connection is lost mid-statement is run again on a new one and succeeds", async () => {
    await legacy.call("SaveFeishuWebhook", {
      user_id: 91,
      enabled: true,
      webhook_url: flowUrl("savekey00091"),
    });
    await other.query("begin");
    await other.query("select * from user_notification_channels where user_id = 91 for update");
    const call = legacy.call<{ webhook_url_mask: string }>("SaveFeishuWebhook", {
      user_id: 91,
      enabled: true,
      webhook_url: flowUrl("savekey00092"),
    });
    await until(
      "the save waits for the row",
      async () => (await processlist("insert into `user_notification_channels`%")).length > 0,
    );
    proxy.cut();
    await other.query("commit");
    assert.equal((await call).webhook_url_mask, "https://www.feishu.cn/flow/api/trigger-webhook/save...0092");
  });

  test("while the database cannot be reached, reads and writes answer UNAVAILABLE (legacy: ErrorInfo 500), then serve again", async () => {
    await proxy.refuse();
    try {
      for (const [name, request] of [
        ["GetFeishuWebhook", { user_id: 93 }],
        ["SaveFeishuWebhook", { user_id: 93, enabled: true, webhook_url: flowUrl("savekey00093") }],
        ["DeleteFeishuWebhook", { user_id: 93 }],
      ] as const) {
        const error = await legacy.call(name, request).catch((e: grpc.ServiceError) => e);
        assert.equal((error as grpc.ServiceError).code, grpc.status.UNAVAILABLE, `${name}: ${String(error)}`);
        assert.equal(errorDetails(error).errorInfo?.reason, "500");
      }
      const stats = await ops
        .unary(`${OPS}/GetStats`, GetStatsRequestSchema, GetStatsResponseSchema, {})
        .catch((e: grpc.ServiceError) => e);
      assert.equal((stats as grpc.ServiceError).code, grpc.status.UNAVAILABLE);
    } finally {
      await proxy.accept();
    }
    const saved = await legacy.call<{ configured: boolean }>("SaveFeishuWebhook", {
      user_id: 93,
      enabled: true,
      webhook_url: flowUrl("savekey00093"),
    });
    assert.equal(saved.configured, true);
  });
});
