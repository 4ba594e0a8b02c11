import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { sql } from "kysely";
import type { App } from "../../src/app.ts";
import {
  attemptOf,
  feishuEnv,
  givenChannel,
  recordOf,
  requestedPayload,
  requestNotification,
} from "../support/delivery.ts";
import { type FakeFeishu, startFakeFeishu } from "../support/fake-feishu.ts";
import {
  createTestEnv,
  outboxRows,
  query,
  recordEvents,
  startApp,
  type TestEnv,
} from "../support/harness.ts";
import { createManualClock } from "../support/manual-clock.ts";

const MINUTE = 60_000;

describe("Feishu delivery on MariaDB + Kafka", () => {
  let fake: FakeFeishu;
  let testEnv: TestEnv;
  before(async () => {
    fake = await startFakeFeishu();
    testEnv = await createTestEnv("mysql+kafka", feishuEnv(fake));
  });
  after(async () => {
    await fake.close();
    await testEnv.dispose();
  });

  async function withApp(
    run: (app: App, events: ReturnType<typeof recordEvents>) => Promise<void>,
    clock?: ReturnType<typeof createManualClock>,
  ) {
    const app = await startApp(testEnv, clock ? { clock } : {});
    const events = recordEvents(app);
    try {
      await run(app, events);
    } finally {
      await app.stop();
    }
  }

  test("1. an event reaches the user's Flow trigger webhook, once, and the record is sent", async () => {
    await withApp(async (app, events) => {
      await givenChannel(app, 101, fake.flowUrl("flowkey0101"), {
        authType: "Bearer",
        bearerToken: "secret-token-101",
      });
      const outboxId = await requestNotification(app, { userId: 101, previewId: "asp_101" });
      const recordId = await recordOf(events, outboxId);
      const result = await attemptOf(events, recordId);
      assert.equal(result.status, "sent");
      const [request] = fake.requestsFor("flowkey0101");
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
      fake.script("flowkey0102", { status: 500, body: "upstream" });
      await givenChannel(app, 102, fake.flowUrl("flowkey0102"));
      const recordId = await recordOf(
        events,
        await requestNotification(app, { userId: 102, previewId: "asp_102" }),
      );
      const first = await attemptOf(events, recordId, 1);
      assert.deepEqual([first.status, first.errorCode], ["failed", "provider_5xx"]);
      const failed = await app.records.get(recordId);
      assert.equal(failed?.nextRetryAt?.getTime(), clock.now().getTime() + 5 * MINUTE);
      await app.retryLoop.scanOnce();
      assert.equal(fake.requestsFor("flowkey0102").length, 1, "not retried before its time");
      clock.advance(5 * MINUTE);
      await app.retryLoop.scanOnce();
      const second = await attemptOf(events, recordId, 2);
      assert.equal(second.status, "sent");
      const record = await app.records.get(recordId);
      assert.equal(record?.attemptCount, 2);
      assert.equal(record?.lastErrorCode, null);
      assert.equal(fake.requestsFor("flowkey0102").length, 2);
    }, clock);
  });

  test("3. HTTP 429 and code 11232 are retried after backoff (5, then 10 minutes)", async () => {
    const clock = createManualClock();
    await withApp(async (app, events) => {
      fake.script(
        "botkey000103",
        { status: 429, body: "" },
        { status: 200, body: { code: 11232, msg: "frequency limited" } },
      );
      await givenChannel(app, 103, fake.botUrl("botkey000103"));
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
      assert.equal(fake.requestsFor("botkey000103").length, 3);
    }, clock);
  });

  test("4. code 19021 is dead at once, without a retry", async () => {
    const clock = createManualClock();
    await withApp(async (app, events) => {
      fake.script("botkey000104", { status: 200, body: { code: 19021, msg: "sign match fail" } });
      await givenChannel(app, 104, fake.botUrl("botkey000104"));
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
      assert.equal(fake.requestsFor("botkey000104").length, 1);
    }, clock);
  });

  test("5. a webhook that does not answer in time is a provider_timeout, retried", async () => {
    await withApp(async (app, events) => {
      fake.script("flowkey0105", { hang: true });
      await givenChannel(app, 105, fake.flowUrl("flowkey0105"));
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
      await givenChannel(app, 107, fake.flowUrl("flowkey0107"), { enabled: false });
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
      assert.equal(fake.requestsFor("flowkey0107").length, 0);
    });
  });

  test("7. two events with the same dedupe key: exactly one POST", async () => {
    await withApp(async (app, events) => {
      await givenChannel(app, 108, fake.flowUrl("flowkey0108"));
      const key = "108:unfinished_feedback:2026-03-02T10:30:00+08:00";
      const a = await requestNotification(app, { userId: 108, previewId: "asp_108a", dedupeKey: key });
      const b = await requestNotification(app, { userId: 108, previewId: "asp_108b", dedupeKey: key });
      const [ra, rb] = [await recordOf(events, a), await recordOf(events, b)];
      assert.equal(ra, rb, "both events share one record");
      await attemptOf(events, ra);
      const third = await requestNotification(app, { userId: 108, previewId: "asp_108c", dedupeKey: key });
      await recordOf(events, third);
      const rows = await outboxRows(app, [a, b, third]);
      await events.until(
        "all three outbox rows consumed",
        () =>
          events
            .of<{ consumed: number[] }>("consumer:outcomes")
            .flatMap((o) => o.consumed)
            .filter((id) => [a, b, third].includes(id)).length === 3,
      );
      assert.equal(rows.length, 3);
      assert.equal(fake.requestsFor("flowkey0108").length, 1);
      assert.equal(
        events.of<{ recordId: number }>("delivery:result").filter((r) => r.recordId === ra).length,
        1,
      );
    });
  });

  test("8. two service instances racing on one record: exactly one POST", async () => {
    const first = await startApp(testEnv);
    const second = await startApp(testEnv);
    const firstEvents = recordEvents(first);
    const secondEvents = recordEvents(second);
    try {
      fake.script("flowkey0109", { delayMs: 200 });
      await givenChannel(first, 109, fake.flowUrl("flowkey0109"));
      const [taken] = await first.records.intake(
        [
          {
            payload: { ...parsedPayload(109, "asp_109") },
            texts: { summaryText: "hi", fallbackText: "fallback", fallbackUsed: false },
          },
        ],
        new Date(),
      );
      const record = taken?.record;
      assert.ok(record);
      for (let round = 0; round < 5; round++) {
        first.dispatcher.submit([{ recordId: record.id, userId: 109 }]);
        second.dispatcher.submit([{ recordId: record.id, userId: 109 }]);
      }
      await Promise.race([
        firstEvents.until("a result", () => firstEvents.of("delivery:result").length > 0),
        secondEvents.until("a result", () => secondEvents.of("delivery:result").length > 0),
      ]);
      await first.retryLoop.scanOnce();
      await second.retryLoop.scanOnce();
      assert.equal(fake.requestsFor("flowkey0109").length, 1);
      const claims = [
        ...firstEvents.of<{ ids: number[] }>("delivery:claimed"),
        ...secondEvents.of<{ ids: number[] }>("delivery:claimed"),
      ];
      assert.equal(claims.filter((c) => c.ids.includes(record.id)).length, 1, "one claim won");
      assert.equal((await first.records.get(record.id))?.status, "sent");
    } finally {
      await Promise.all([first.stop(), second.stop()]);
    }
  });

  test("a burst to one bot is queued at 5 per second, not failed, and other users are not held up", async () => {
    await withApp(async (app, events) => {
      await givenChannel(app, 120, fake.botUrl("botkey000120"));
      await givenChannel(app, 121, fake.flowUrl("flowkey0121"));
      const burst: number[] = [];
      for (let i = 0; i < 7; i++)
        burst.push(await requestNotification(app, { userId: 120, previewId: `asp_120_${i}` }));
      await requestNotification(app, { userId: 121, previewId: "asp_121" });
      const records = await Promise.all(burst.map((id) => recordOf(events, id)));
      const results = await Promise.all(records.map((id) => attemptOf(events, id)));
      assert.deepEqual(
        new Set(results.map((r) => r.status)),
        new Set(["sent"]),
        "every one sent, none failed",
      );
      const arrivals = fake.requestsFor("botkey000120").map((r) => r.at);
      assert.equal(arrivals.length, 7);
      const first = arrivals[0] ?? 0;
      assert.equal(arrivals.filter((at) => at - first < 900).length, 5, "five in the first second");
      assert.ok((arrivals[5] ?? 0) - first >= 950, "the sixth waits for the window");
      const other = fake.requestsFor("flowkey0121")[0]?.at ?? Number.POSITIVE_INFINITY;
      assert.ok(other < (arrivals[5] ?? 0), "another user's notification does not wait behind the burst");
    });
  });

  test("10. a stranded pending record is picked up by the retry scan", async () => {
    const clock = createManualClock();
    await withApp(async (app, events) => {
      await givenChannel(app, 111, fake.flowUrl("flowkey0111"));
      // Taken in, then the process died before claiming it: pending, and never queued here.
      const [taken] = await app.records.intake(
        [
          {
            payload: parsedPayload(111, "asp_111"),
            texts: { summaryText: "", fallbackText: "回来看看", fallbackUsed: true },
          },
        ],
        clock.now(),
      );
      const record = taken?.record;
      assert.ok(record);
      await app.retryLoop.scanOnce();
      assert.equal(fake.requestsFor("flowkey0111").length, 0, "not stranded yet");
      clock.advance(3 * MINUTE);
      await app.retryLoop.scanOnce();
      assert.equal((await attemptOf(events, record.id)).status, "sent");
      const [request] = fake.requestsFor("flowkey0111");
      assert.ok(request);
      assert.equal(
        (request.body.message as { summary: string }).summary,
        "回来看看\n/assistant/conv_asp_111",
      );
    }, clock);
  });

  test("11. a signed group-bot request carries the documented signature and a card", async () => {
    await withApp(async (app, events) => {
      fake.requireSignature("botkey000112", "bot-secret-112");
      const view = await givenChannel(app, 112, fake.botUrl("botkey000112"), {
        signingSecret: "bot-secret-112",
      });
      assert.deepEqual([view.webhookKind, view.hasSigningSecret], ["group_bot", true]);
      const recordId = await recordOf(
        events,
        await requestNotification(app, { userId: 112, previewId: "asp_112" }),
      );
      assert.equal((await attemptOf(events, recordId)).status, "sent");
      const [request] = fake.requestsFor("botkey000112");
      assert.ok(request);
      const timestamp = String(request.body.timestamp);
      assert.ok(Math.abs(Number(timestamp) - Date.now() / 1000) < 60, "timestamp is in Unix seconds");
      const expected = createHmac("sha256", `${timestamp}\n${"bot-secret-112"}`).update("").digest("base64");
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
      await givenChannel(app, 113, fake.flowUrl("flowkey0113"));
      const base = requestedPayload(113, "asp_113_bad");
      const poison = {
        badJson: await requestNotification(app, { userId: 113, previewId: "p1", payload: '"not an object"' }),
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
      assert.match(reasons.get(poison.badJson) ?? "", /^dead: .*payload must be a JSON object/);
      assert.match(reasons.get(poison.noUser) ?? "", /^dead: .*user_id must be a positive integer/);
      assert.match(reasons.get(poison.noPreview) ?? "", /^dead: .*preview_id is required/);
      assert.match(
        reasons.get(poison.badUrl) ?? "",
        /^dead: .*target_url must be a relative \/assistant\/ path/,
      );
      assert.match(reasons.get(poison.noTime) ?? "", /^dead: .*requested_at must be an RFC 3339 time/);
      assert.match(reasons.get(poison.badVersion) ?? "", /^dead: .*event_version not supported: "2"/);
      assert.equal(fake.requestsFor("flowkey0113").length, 1);
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

function parsedPayload(userId: number, previewId: string) {
  return {
    notificationId: 0,
    userId,
    triggerId: `ast_${previewId}`,
    previewId,
    triggerType: "unfinished_feedback",
    targetType: "task",
    targetId: 1,
    dedupeKey: `${userId}:direct:${previewId}`,
    targetUrl: `/assistant/conv_${previewId}`,
    summaryText: "",
    fallbackText: "",
    traceId: "",
    requestedAt: new Date(),
  };
}
