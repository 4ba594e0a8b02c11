import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type App, createApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config/load-config.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { attemptOf, feishuEnv, recordOf } from "../support/delivery.ts";
import { type FakeFeishu, startFakeFeishu } from "../support/fake-feishu.ts";
import { DAY, goTables, goWriter, shanghai } from "../support/go-tables.ts";
import { errorDetails, type grpc, legacyClient } from "../support/grpc-clients.ts";
import { createTestEnv, outboxRows, recordEvents, startApp, type TestEnv } from "../support/harness.ts";
import { createManualClock, type ManualClock } from "../support/manual-clock.ts";
import type { TestDatabase } from "../support/mysql.ts";

// This service runs in UTC, as in a container; SmartFlow's Go producers run in Asia/Shanghai (loc=Local) and
// write their wall clock (support/go-tables.ts `shanghai`). DATABASE_TIME_ZONE tells this service so.
process.env.TZ = "UTC";

const MINUTE = 60;

/**
 * The swap, on MariaDB + Kafka: tables created as SmartFlow's Go services create them, rows in Go's formats
 * and Go's wall clock, then this service started on that database in place of the Go notification service.
 */
describe("replacing the Go service: its tables, rows, texts and clock", () => {
  let fake: FakeFeishu;
  before(async () => {
    assert.equal(new Date().getTimezoneOffset(), 0, "this service's process runs in UTC");
    fake = await startFakeFeishu();
  });
  after(() => fake.close());

  /** A database whose tables Go created, and this service's environment for it. */
  async function goDeployment(): Promise<{ testEnv: TestEnv; db: TestDatabase }> {
    const testEnv = await createTestEnv("mysql+kafka", {
      ...feishuEnv(fake),
      DATABASE_TIME_ZONE: "Asia/Shanghai",
      DELIVERY_SENDING_LEASE_MS: String(10 * MINUTE * 1000),
    });
    const db = testEnv.database;
    assert.ok(db);
    for (const ddl of goTables) await db.query(ddl);
    return { testEnv, db };
  }

  /** Runs `body` against this service started on a Go deployment's database; `clock` replaces time. */
  async function swapped(
    body: (app: App, events: ReturnType<typeof recordEvents>, deployment: Deployment) => Promise<void>,
    given: (deployment: Deployment) => Promise<void>,
    clock?: ManualClock,
  ) {
    const { testEnv, db } = await goDeployment();
    const deployment = { testEnv, db, go: goWriter(db) };
    try {
      await given(deployment);
      const app = await startApp(testEnv, { start: false, ...(clock ? { clock } : {}) });
      const events = recordEvents(app);
      try {
        await app.start();
        await body(app, events, deployment);
      } finally {
        await app.stop();
      }
    } finally {
      await testEnv.dispose();
    }
  }

  test("a record Go left in sending 30 min ago without a lease is re-sent once; one 5 min old waits for its lease", async () => {
    const clock = createManualClock();
    let stale = 0;
    let recent = 0;
    await swapped(
      async (app, events) => {
        const first = await attemptOf(events, stale);
        assert.deepEqual([first.status, first.attemptCount], ["sent", 2], "re-sent after Go's lease ran out");
        await events.until("the startup scan", () => events.of("retry:scanned").length > 0);
        const waiting = await app.records.get(recent);
        assert.deepEqual([waiting?.status, waiting?.attemptCount], ["sending", 1], "Go's lease still runs");
        assert.equal(fake.requestsFor("gosending0802").length, 0);

        clock.advance(6 * MINUTE * 1000);
        await app.retryLoop.scanOnce();
        const second = await attemptOf(events, recent);
        assert.deepEqual([second.status, second.attemptCount], ["sent", 2], "re-sent once its lease ran out");
        await app.retryLoop.scanOnce();
        assert.equal(fake.requestsFor("gosending0801").length, 1, "sent once");
        assert.equal(fake.requestsFor("gosending0802").length, 1, "sent once");
        assert.equal(events.of("delivery:result").length, 2);
      },
      async ({ go }) => {
        await go.channel(801, fake.flowUrl("gosending0801"));
        await go.channel(802, fake.flowUrl("gosending0802"));
        stale = await go.record(801, "asp_801", { status: "sending", attempts: 1, updatedAgo: 30 * MINUTE });
        recent = await go.record(802, "asp_802", { status: "sending", attempts: 1, updatedAgo: 5 * MINUTE });
      },
      clock,
    );
  });

  test("Go-era URLs (trailing slash, query, short key, bad %-escape): Get hides the key; delivery goes where Go's went", async () => {
    const urls = {
      811: { key: "gotrail0811abcd", url: `${fake.flowUrl("gotrail0811abcd")}/`, mask: "gotr...abcd" },
      812: { key: "goquery0812abcd", url: `${fake.flowUrl("goquery0812abcd")}?from=go`, mask: "goqu...abcd" },
      813: { key: "abc", url: fake.flowUrl("abc"), mask: "****" },
      814: { key: "gobad%zz0814abcd", url: fake.flowUrl("gobad%zz0814abcd"), mask: "goba...abcd" },
    };
    const outboxIds = new Map<number, number>();
    await swapped(
      async (app, events) => {
        const client = legacyClient(`127.0.0.1:${app.apiPort()}`);
        try {
          for (const [user, { key, mask }] of Object.entries(urls)) {
            const got = await client.call<{ webhook_url_mask: string }>("GetFeishuWebhook", {
              user_id: user,
            });
            assert.equal(got.webhook_url_mask, `${fake.origin}/flow/api/trigger-webhook/${mask}`, user);
            assert.ok(key.length <= 3 || !JSON.stringify(got).includes(key), `${user}: the key stays hidden`);
          }
          const results = new Map<number, Awaited<ReturnType<typeof attemptOf>>>();
          for (const [user, outboxId] of outboxIds) {
            results.set(user, await attemptOf(events, await recordOf(events, outboxId)));
          }
          assert.deepEqual(
            [811, 812, 813, 814].map((user) => [results.get(user)?.status, results.get(user)?.errorCode]),
            [
              ["sent", null],
              ["sent", null],
              ["sent", null],
              ["dead", "invalid_url"],
            ],
            "sent where Go would send; Go's URL parser refuses a bad escape too",
          );
          assert.deepEqual(
            fake.requests.map((r) => r.path).sort(),
            [
              "/flow/api/trigger-webhook/abc",
              "/flow/api/trigger-webhook/goquery0812abcd?from=go",
              "/flow/api/trigger-webhook/gotrail0811abcd/",
            ].sort(),
            "each POST to the URL as stored",
          );
          const tested = await client.call<{ status: string }>("TestFeishuWebhook", { user_id: 811 });
          assert.equal(tested.status, "success");
        } finally {
          client.close();
        }
      },
      async ({ go, testEnv }) => {
        fake.requests.length = 0;
        for (const [user, { url }] of Object.entries(urls)) {
          await go.channel(Number(user), url);
          outboxIds.set(Number(user), await go.outbox(testEnv.topic, Number(user), `asp_url_${user}`));
        }
      },
    );
  });

  test("the legacy RPCs' messages and the test texts are Go's, byte for byte; dead rows keep Go's reasons", async () => {
    const dead: Record<string, number> = {};
    await swapped(
      async (app, events) => {
        const client = legacyClient(`127.0.0.1:${app.apiPort()}`);
        try {
          const cases: [string, object, number, string, string][] = [
            ["GetFeishuWebhook", { user_id: 0 }, 16, "40014", "unauthorized"],
            ["DeleteFeishuWebhook", { user_id: -1 }, 16, "40014", "unauthorized"],
            ["SaveFeishuWebhook", { user_id: 821, webhook_url: "  " }, 3, "40004", "missing param"],
            [
              "SaveFeishuWebhook",
              { user_id: 821, webhook_url: "https://www.feishu.cn/else" },
              3,
              "40005",
              "wrong param type",
            ],
            [
              "SaveFeishuWebhook",
              { user_id: 821, webhook_url: fake.flowUrl("gotexts0821"), auth_type: "bearer" },
              3,
              "40004",
              "missing param",
            ],
          ];
          for (const [method, request, code, reason, info] of cases) {
            const error = (await client.call(method, request).catch((e: unknown) => e)) as grpc.ServiceError;
            const { errorInfo, badRequest } = errorDetails(error);
            assert.deepEqual(
              [error.code, error.details, errorInfo?.domain, errorInfo?.reason, { ...errorInfo?.metadata }],
              [code, info, "smartflow.notification", reason, { info }],
              `${method} ${JSON.stringify(request)}`,
            );
            assert.ok(badRequest?.fieldViolations[0]?.field, "our own words travel in BadRequest");
          }
          const texts: [number, string][] = [
            [822, "用户未启用飞书 Webhook 触发器"],
            [823, "用户未启用飞书 Webhook 触发器"],
            [824, "用户未配置飞书 Webhook 触发器"],
          ];
          for (const [user, message] of texts) {
            const result = await client.call<Record<string, unknown>>("TestFeishuWebhook", { user_id: user });
            assert.deepEqual(
              [result.status, result.outcome, result.skipped, result.message, result.provider],
              ["failed", "skipped", true, message, "feishu"],
              String(user),
            );
          }
          const channel = await client.call<Record<string, unknown>>("GetFeishuWebhook", { user_id: 822 });
          assert.deepEqual(
            [channel.last_test_status, channel.last_test_error],
            ["failed", "用户未启用飞书 Webhook 触发器"],
          );
        } finally {
          client.close();
        }
        const ids = Object.values(dead);
        await events.until("the bad events are dead", () =>
          ids.every((id) =>
            events.of<{ dead: number[] }>("consumer:outcomes").some((o) => o.dead.includes(id)),
          ),
        );
        const reasons = new Map((await outboxRows(app, ids)).map((row) => [row.id, row.last_error]));
        const event = "notification.feishu.requested";
        assert.equal(reasons.get(dead.version as number), `${event} event_version 不匹配: 2`);
        assert.equal(
          reasons.get(dead.unreadable as number),
          `解析 ${event} 载荷失败: payload must be a JSON object`,
        );
        assert.equal(
          reasons.get(dead.invalid as number),
          `${event} 载荷非法: user_id must be a positive integer`,
        );
      },
      async ({ go, testEnv }) => {
        await go.channel(822, fake.flowUrl("gotexts0822"), false);
        await go.channel(823, "", true);
        dead.version = await go.outbox(testEnv.topic, 825, "asp_825", { version: "2" });
        dead.unreadable = await go.outbox(testEnv.topic, 825, "asp_826", { payload: [1, 2] });
        dead.invalid = await go.outbox(testEnv.topic, 825, "asp_827", { payload: { user_id: 0 } });
      },
    );
  });

  test("producers in Asia/Shanghai, this service in UTC with DATABASE_TIME_ZONE: retries, leases and sent_at are right", async () => {
    let due = 0;
    let notDue = 0;
    let fresh = 0;
    let leaseAhead: number | undefined;
    await swapped(
      async (app, events, { db }) => {
        const record = await recordOf(events, fresh);
        assert.equal((await attemptOf(events, record)).status, "sent", "Go's new row is relayed at once");
        assert.equal(
          (await attemptOf(events, due)).status,
          "sent",
          "a retry due 1 min ago (Shanghai) is sent",
        );
        await events.until("the startup scan", () => events.of("retry:scanned").length > 0);
        assert.equal((await app.records.get(notDue))?.status, "failed", "a retry due in 10 min waits");
        assert.equal(fake.requestsFor("gozone0832").length, 0);
        assert.ok(
          leaseAhead !== undefined && leaseAhead > 9 * MINUTE && leaseAhead <= 10 * MINUTE,
          `${leaseAhead}`,
        );
        // What this service wrote is Shanghai wall clock, as Go would have written it.
        const [times] = await db.query<Record<string, number>>(
          `select
            (select timestampdiff(second, sent_at, ${shanghai()}) from notification_records where id = ?) as sent,
            (select timestampdiff(second, created_at, ${shanghai()}) from notification_records where id = ?) as created,
            (select timestampdiff(second, consumed_at, ${shanghai()}) from notification_outbox_messages where id = ?) as consumed`,
          [due, record, fresh],
        );
        for (const [what, ago] of Object.entries(times ?? {})) {
          assert.ok(ago !== null && Number(ago) >= 0 && Number(ago) < 120, `${what} written ${ago} s ago`);
        }
        const read = await app.records.get(due);
        const skew = Math.abs((read?.sentAt?.getTime() ?? 0) - Date.now());
        assert.ok(skew < 120_000, `sent_at reads back as the instant it was written (${skew} ms off)`);
      },
      async ({ go, testEnv, db }) => {
        await go.channel(831, fake.flowUrl("gozone0831"));
        await go.channel(832, fake.flowUrl("gozone0832"));
        await go.channel(833, fake.flowUrl("gozone0833"));
        due = await go.record(831, "asp_831", {
          status: "failed",
          attempts: 1,
          updatedAgo: 6 * MINUTE,
          nextRetryIn: -MINUTE,
        });
        notDue = await go.record(832, "asp_832", {
          status: "failed",
          attempts: 1,
          updatedAgo: MINUTE,
          nextRetryIn: 10 * MINUTE,
        });
        fake.script("gozone0833", {
          before: async () => {
            const [row] = await db.query<{ ahead: number }>(
              `select timestampdiff(second, ${shanghai()}, lease_until) as ahead from notification_records
                where user_id = 833`,
            );
            leaseAhead = row ? Number(row.ahead) : undefined;
          },
        });
        fresh = await go.outbox(testEnv.topic, 833, "asp_833");
      },
    );
  });

  test("a service whose DATABASE_TIME_ZONE is not the producers' says so at startup", async () => {
    const { testEnv, db } = await goDeployment();
    try {
      await goWriter(db).outbox(testEnv.topic, 861, "asp_861");
      const warnings = async (timeZone: string) => {
        const lines: Record<string, unknown>[] = [];
        const config = loadConfig({ ...testEnv.env, DATABASE_TIME_ZONE: timeZone });
        const logger = createLogger("warn", (line) =>
          lines.push(JSON.parse(line) as Record<string, unknown>),
        );
        const app = createApp(config, { logger });
        await app.start();
        await app.stop();
        return lines.filter((line) => String(line.msg).startsWith("rows look written in the future"));
      };
      const [warning, ...more] = await warnings("local");
      assert.equal(more.length, 0);
      assert.equal(warning?.table, "notification_outbox_messages");
      assert.match(String(warning?.ahead), /^(7 h 5\d min|8 h)/, "Shanghai's wall clock read as UTC");
      assert.deepEqual(await warnings("Asia/Shanghai"), []);
    } finally {
      await testEnv.dispose();
    }
  });

  test("week-old published outbox rows and pending or failed records are dead with a reason, not sent", async () => {
    const ids = { oldRow: 0, recentRow: 0, oldPending: 0, oldFailed: 0 };
    await swapped(
      async (app, events) => {
        const recent = await recordOf(events, ids.recentRow);
        assert.equal(
          (await attemptOf(events, recent)).status,
          "sent",
          "a row published 20 min ago is re-queued",
        );
        await events.until("the sweeper expired the old row", () =>
          events.of<{ expired: number }>("sweeper:requeued").some((e) => e.expired === 1),
        );
        await events.until("the retry scan expired the old records", () =>
          events.of<{ expired: number }>("retry:scanned").some((e) => e.expired === 2),
        );
        const [row] = await outboxRows(app, [ids.oldRow]);
        assert.equal(row?.status, "dead");
        assert.match(
          row?.last_error ?? "",
          /^not re-queued: created 7 d ago \(.+\), past OUTBOX_CLAIMED_MAX_AGE_MS \(1 d\); published and never consumed$/,
        );
        for (const id of [ids.oldPending, ids.oldFailed]) {
          const record = await app.records.get(id);
          assert.deepEqual(
            [record?.status, record?.lastErrorCode, record?.lastError],
            ["dead", "expired", "not sent: created more than 1 d ago (DELIVERY_MAX_AGE_MS)"],
          );
        }
        assert.equal(fake.requestsFor("goold0841").length, 0, "nothing from last week went out");
        assert.equal(fake.requestsFor("goold0842").length, 1);
      },
      async ({ go, testEnv }) => {
        await go.channel(841, fake.flowUrl("goold0841"));
        await go.channel(842, fake.flowUrl("goold0842"));
        ids.oldRow = await go.outbox(testEnv.topic, 841, "asp_841", {
          ageSeconds: 7 * DAY,
          publishedAgo: 7 * DAY,
        });
        ids.recentRow = await go.outbox(testEnv.topic, 842, "asp_842", {
          ageSeconds: 20 * MINUTE,
          publishedAgo: 20 * MINUTE,
        });
        ids.oldPending = await go.record(841, "asp_841_p", {
          status: "pending",
          attempts: 0,
          updatedAgo: 7 * DAY,
        });
        ids.oldFailed = await go.record(841, "asp_841_f", {
          status: "failed",
          attempts: 2,
          updatedAgo: 7 * DAY,
          nextRetryIn: -7 * DAY + 20 * MINUTE,
        });
      },
    );
  });
});

type Deployment = { testEnv: TestEnv; db: TestDatabase; go: ReturnType<typeof goWriter> };
