import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, test } from "node:test";
import { sql } from "kysely";
import {
  attemptOf,
  givenChannel,
  recordOf,
  requestedPayload,
  requestNotification,
  useDeliveryEnv,
} from "../support/delivery.ts";
import { backends, outboxRows, query } from "../support/harness.ts";
import { createManualClock } from "../support/manual-clock.ts";

const MINUTE = 60_000;

for (const backend of backends) {
  describe(`Feishu delivery on ${backend}: what each answer does to the record`, () => {
    const env = useDeliveryEnv(backend);
    const withApp = env.withApp;

    test("1. an event reaches the user's Flow trigger webhook, once, and the record is sent", async () => {
      await withApp(async (app, events) => {
        await givenChannel(app, 101, env.fake.flowUrl("flowkey0101"), {
          authType: "Bearer",
          bearerToken: "secret-token-101",
        });
        const outboxId = await requestNotification(app, { userId: 101, previewId: "asp_101" });
        const recordId = await recordOf(events, outboxId);
        const result = await attemptOf(events, recordId);
        assert.equal(result.status, "sent");
        const [request] = env.fake.requestsFor("flowkey0101");
        assert.ok(request);
        assert.equal(request.headers.authorization, "Bearer secret-token-101");
        assert.equal(request.body.event, "smartflow.schedule_adjustment_ready");
        assert.equal(request.body.notification_id, recordId);
        assert.equal(request.body.preview_id, "asp_101");
        assert.deepEqual(request.body.message, {
          title: "SmartFlow 日程调整建议",
          summary: "明天上午的两个任务时间冲突，建议调整。\n/assistant/conv_asp_101",
          action_text: "查看并确认调整",
          action_url: "https://app.smartflow.test/assistant/conv_asp_101",
        });
        const record = await app.records.get(recordId);
        assert.equal(record?.status, "sent");
        assert.equal(record?.attemptCount, 1);
        assert.ok(record?.sentAt);
        assert.match(record?.providerMessageId ?? "", /^feishu_webhook_\d+_\d+$/);
        const [row] = await outboxRows(app, [outboxId]);
        assert.equal(row?.status, "consumed");
      });
    });

    test("2. a 500 and then a 200: sent on the second attempt, after the backoff", async () => {
      const clock = createManualClock();
      await withApp(async (app, events) => {
        env.fake.script("flowkey0102", { status: 500, body: "upstream" });
        await givenChannel(app, 102, env.fake.flowUrl("flowkey0102"));
        const recordId = await recordOf(
          events,
          await requestNotification(app, { userId: 102, previewId: "asp_102" }),
        );
        const first = await attemptOf(events, recordId, 1);
        assert.deepEqual([first.status, first.errorCode], ["failed", "provider_5xx"]);
        const failed = await app.records.get(recordId);
        assert.equal(failed?.nextRetryAt?.getTime(), clock.now().getTime() + 5 * MINUTE);
        await app.retryLoop.scanOnce();
        assert.equal(env.fake.requestsFor("flowkey0102").length, 1, "not retried before its time");
        clock.advance(5 * MINUTE);
        await app.retryLoop.scanOnce();
        const second = await attemptOf(events, recordId, 2);
        assert.equal(second.status, "sent");
        const record = await app.records.get(recordId);
        assert.equal(record?.attemptCount, 2);
        assert.equal(record?.lastErrorCode, null);
        assert.equal(env.fake.requestsFor("flowkey0102").length, 2);
      }, clock);
    });

    test("3. HTTP 429 and code 11232 are retried after backoff (5, then 10 minutes)", async () => {
      const clock = createManualClock();
      await withApp(async (app, events) => {
        env.fake.script(
          "botkey000103",
          { status: 429, body: "" },
          { status: 200, body: { code: 11232, msg: "frequency limited" } },
        );
        await givenChannel(app, 103, env.fake.botUrl("botkey000103"));
        const recordId = await recordOf(
          events,
          await requestNotification(app, { userId: 103, previewId: "asp_103" }),
        );
        const first = await attemptOf(events, recordId, 1);
        assert.deepEqual([first.status, first.errorCode], ["failed", "provider_rate_limited"]);
        assert.equal(
          (await app.records.get(recordId))?.nextRetryAt?.getTime(),
          clock.now().getTime() + 5 * MINUTE,
        );
        clock.advance(5 * MINUTE);
        await app.retryLoop.scanOnce();
        const second = await attemptOf(events, recordId, 2);
        assert.deepEqual([second.status, second.errorCode], ["failed", "provider_rate_limited"]);
        assert.equal(
          (await app.records.get(recordId))?.nextRetryAt?.getTime(),
          clock.now().getTime() + 10 * MINUTE,
        );
        clock.advance(10 * MINUTE);
        await app.retryLoop.scanOnce();
        assert.equal((await attemptOf(events, recordId, 3)).status, "sent");
        assert.equal(env.fake.requestsFor("botkey000103").length, 3);
      }, clock);
    });

    test("4. code 19021 is dead at once, without a retry", async () => {
      const clock = createManualClock();
      await withApp(async (app, events) => {
        env.fake.script("botkey000104", { status: 200, body: { code: 19021, msg: "sign match fail" } });
        await givenChannel(app, 104, env.fake.botUrl("botkey000104"));
        const recordId = await recordOf(
          events,
          await requestNotification(app, { userId: 104, previewId: "asp_104" }),
        );
        const result = await attemptOf(events, recordId);
        assert.deepEqual([result.status, result.errorCode], ["dead", "provider_auth_failed"]);
        clock.advance(60 * MINUTE);
        await app.retryLoop.scanOnce();
        const record = await app.records.get(recordId);
        assert.equal(record?.status, "dead");
        assert.match(record?.lastError ?? "", /19021/);
        assert.equal(env.fake.requestsFor("botkey000104").length, 1);
      }, clock);
    });

    test("5. a webhook that does not answer in time is a provider_timeout, retried", async () => {
      await withApp(async (app, events) => {
        env.fake.script("flowkey0105", { hang: true });
        await givenChannel(app, 105, env.fake.flowUrl("flowkey0105"));
        const recordId = await recordOf(
          events,
          await requestNotification(app, { userId: 105, previewId: "asp_105" }),
        );
        const result = await attemptOf(events, recordId);
        assert.deepEqual([result.status, result.errorCode], ["failed", "provider_timeout"]);
        assert.ok((await app.records.get(recordId))?.nextRetryAt, "a retry is scheduled");
      });
    });

    test("6. a missing or a disabled channel: skipped, with no request", async () => {
      await withApp(async (app, events) => {
        await givenChannel(app, 107, env.fake.flowUrl("flowkey0107"), { enabled: false });
        const missing = await recordOf(
          events,
          await requestNotification(app, { userId: 106, previewId: "asp_106" }),
        );
        const disabled = await recordOf(
          events,
          await requestNotification(app, { userId: 107, previewId: "asp_107" }),
        );
        assert.deepEqual(
          [(await attemptOf(events, missing)).status, (await attemptOf(events, disabled)).status],
          ["skipped", "skipped"],
        );
        assert.equal((await app.records.get(missing))?.lastErrorCode, "recipient_missing");
        assert.equal(env.fake.requestsFor("flowkey0107").length, 0);
      });
    });

    test("11. a signed group-bot request carries the documented signature and a card", async () => {
      await withApp(async (app, events) => {
        env.fake.requireSignature("botkey000112", "bot-secret-112");
        const view = await givenChannel(app, 112, env.fake.botUrl("botkey000112"), {
          signingSecret: "bot-secret-112",
        });
        assert.deepEqual([view.webhookKind, view.hasSigningSecret], ["group_bot", true]);
        const recordId = await recordOf(
          events,
          await requestNotification(app, { userId: 112, previewId: "asp_112" }),
        );
        assert.equal((await attemptOf(events, recordId)).status, "sent");
        const [request] = env.fake.requestsFor("botkey000112");
        assert.ok(request);
        const timestamp = String(request.body.timestamp);
        assert.ok(Math.abs(Number(timestamp) - Date.now() / 1000) < 60, "timestamp is in Unix seconds");
        const expected = createHmac("sha256", `${timestamp}\n${"bot-secret-112"}`)
          .update("")
          .digest("base64");
        assert.equal(request.body.sign, expected);
        assert.equal(request.body.msg_type, "interactive");
        assert.match(
          JSON.stringify(request.body.card),
          /https:\/\/app\.smartflow\.test\/assistant\/conv_asp_112/,
        );
        assert.ok(!request.raw.includes("bot-secret-112"), "the secret itself is never sent");
      });
    });

    test("12. each poison class is dead with its reason, and the next valid event is delivered", async () => {
      await withApp(async (app, events) => {
        await givenChannel(app, 113, env.fake.flowUrl("flowkey0113"));
        const base = requestedPayload(113, "asp_113_bad");
        const poison = {
          badJson: await requestNotification(app, {
            userId: 113,
            previewId: "p1",
            payload: '"not an object"',
          }),
          noUser: await requestNotification(app, {
            userId: 113,
            previewId: "p2",
            payload: { ...base, user_id: 0 },
          }),
          noPreview: await requestNotification(app, {
            userId: 113,
            previewId: "p3",
            payload: { ...base, preview_id: " " },
          }),
          badUrl: await requestNotification(app, {
            userId: 113,
            previewId: "p4",
            payload: { ...base, target_url: "https://evil.example/x" },
          }),
          noTime: await requestNotification(app, {
            userId: 113,
            previewId: "p5",
            payload: { ...base, requested_at: "" },
          }),
          badVersion: await requestNotification(app, { userId: 113, previewId: "p6", eventVersion: "2" }),
        };
        const good = await requestNotification(app, { userId: 113, previewId: "asp_113_good" });
        assert.equal((await attemptOf(events, await recordOf(events, good))).status, "sent");
        const ids = Object.values(poison);
        await events.until("every poison row is dead", () => {
          const dead = events.of<{ dead: number[] }>("consumer:outcomes").flatMap((o) => o.dead);
          return ids.every((id) => dead.includes(id));
        });
        const reasons = new Map(
          (await outboxRows(app, ids)).map((row) => [row.id, `${row.status}: ${row.last_error}`]),
        );
        // SmartFlow's Go handler's prefixes, exactly (operators search for them); then our own words.
        const event = "notification.feishu.requested";
        assert.equal(
          reasons.get(poison.badJson),
          `dead: 解析 ${event} 载荷失败: payload must be a JSON object`,
        );
        assert.equal(
          reasons.get(poison.noUser),
          `dead: ${event} 载荷非法: user_id must be a positive integer`,
        );
        assert.equal(reasons.get(poison.noPreview), `dead: ${event} 载荷非法: preview_id is required`);
        assert.equal(
          reasons.get(poison.badUrl),
          `dead: ${event} 载荷非法: target_url must be a relative /assistant/ path`,
        );
        assert.equal(
          reasons.get(poison.noTime),
          `dead: ${event} 载荷非法: requested_at is required (an RFC 3339 time)`,
        );
        assert.equal(reasons.get(poison.badVersion), `dead: ${event} event_version 不匹配: 2`);
        assert.equal(env.fake.requestsFor("flowkey0113").length, 1);
        const { rows } = {
          rows: await query<{ n: number }>(
            app,
            sql`select count(*) as n from notification_records where user_id = 113`,
          ),
        };
        assert.equal(Number(rows[0]?.n), 1, "no record for a poison event");
      });
    });
  });
}
