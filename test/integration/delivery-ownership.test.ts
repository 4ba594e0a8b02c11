import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { FeishuRequestedPayload } from "../../src/notifications/feishu-requested-payload.ts";
import {
  attemptOf,
  givenChannel,
  recordOf,
  requestNotification,
  useDeliveryEnv,
} from "../support/delivery.ts";
import { feishuBotLimits } from "../support/fake-feishu.ts";
import { backends, outboxRows, recordEvents, startApp } from "../support/harness.ts";
import { createManualClock } from "../support/manual-clock.ts";

type Claimed = { ids: number[]; at: number };
type Throttled = { userId: bigint; waitMs: number; at: number };
type Result = { recordId: number; status: string };

/** Who sends a record, and when: dedupe, racing instances, the rate limit, stranded records. */
for (const backend of backends) {
  describe(`Feishu delivery on ${backend}: one sender, at the pace the webhook allows`, () => {
    const env = useDeliveryEnv(backend);

    test("7. two events with the same dedupe key: exactly one POST", async () => {
      await env.withApp(async (app, events) => {
        await givenChannel(app, 108, env.fake.flowUrl("flowkey0108"));
        const key = "108:unfinished_feedback:2026-03-02T10:30:00+08:00";
        const a = await requestNotification(app, { userId: 108, previewId: "asp_108a", dedupeKey: key });
        const b = await requestNotification(app, { userId: 108, previewId: "asp_108b", dedupeKey: key });
        const [ra, rb] = [await recordOf(events, a), await recordOf(events, b)];
        assert.equal(ra, rb, "both events share one record");
        await attemptOf(events, ra);
        const third = await requestNotification(app, { userId: 108, previewId: "asp_108c", dedupeKey: key });
        await recordOf(events, third);
        await events.until(
          "all three outbox rows consumed",
          () =>
            events
              .of<{ consumed: number[] }>("consumer:outcomes")
              .flatMap((o) => o.consumed)
              .filter((id) => [a, b, third].includes(id)).length === 3,
        );
        assert.deepEqual(
          (await outboxRows(app, [a, b, third])).map((row) => row.status),
          ["consumed", "consumed", "consumed"],
        );
        assert.equal(env.fake.requestsFor("flowkey0108").length, 1);
        assert.equal(events.of<Result>("delivery:result").filter((r) => r.recordId === ra).length, 1);
      });
    });

    test("8. two service instances racing on one record: exactly one POST", async () => {
      const first = await startApp(env.testEnv);
      const second = await startApp(env.testEnv);
      const events = recordEvents(first, second);
      try {
        env.fake.script("flowkey0109", { delayMs: 200 });
        await givenChannel(first, 109, env.fake.flowUrl("flowkey0109"));
        const [taken] = await first.records.intake(
          [
            {
              payload: parsedPayload(109, "asp_109"),
              texts: { summaryText: "hi", fallbackText: "fallback", fallbackUsed: false },
            },
          ],
          new Date(),
        );
        const record = taken?.record;
        assert.ok(record);
        for (let round = 0; round < 5; round++) {
          first.dispatcher.submit([{ recordId: record.id, userId: 109n }]);
          second.dispatcher.submit([{ recordId: record.id, userId: 109n }]);
        }
        await events.until("a result", () => events.of("delivery:result").length > 0);
        await first.retryLoop.scanOnce();
        await second.retryLoop.scanOnce();
        assert.equal(env.fake.requestsFor("flowkey0109").length, 1);
        const claims = events.of<Claimed>("delivery:claimed");
        assert.equal(claims.filter((c) => c.ids.includes(record.id)).length, 1, "one claim won");
        assert.equal((await first.records.get(record.id))?.status, "sent");
      } finally {
        await Promise.all([first.stop(), second.stop()]);
      }
    });

    test("a burst to one bot waits for its rate limit instead of failing, and other users are not held up", async () => {
      // The clock stands still, so what the limiter allows is decided by its own rule (5 per second, the
      // window widened by DELIVERY_RATE_LIMIT_MARGIN_MS), never by how fast this machine happens to be. The
      // fake's own limits count real time, which this test does not follow: they are off here.
      const clock = createManualClock();
      env.fake.setRateLimits(null);
      const t0 = clock.now().getTime();
      await env.withApp(async (app, events) => {
        await givenChannel(app, 120, env.fake.botUrl("botkey000120"));
        await givenChannel(app, 121, env.fake.flowUrl("flowkey0121"));
        const burst: number[] = [];
        for (let i = 0; i < 7; i++)
          burst.push(await requestNotification(app, { userId: 120, previewId: `asp_120_${i}` }));
        const other = await recordOf(
          events,
          await requestNotification(app, { userId: 121, previewId: "asp_121" }),
        );
        const records = await Promise.all(burst.map((id) => recordOf(events, id)));
        const claimedAt = (id: number) =>
          events.of<Claimed>("delivery:claimed").find((c) => c.ids.includes(id))?.at;
        const throttled = (userId: number) =>
          events.of<Throttled>("delivery:throttled").filter((t) => t.userId === BigInt(userId));

        await events.until("the limiter held the burst back", () => throttled(120).length > 0);
        await events.until("the other user's notification is sent", () =>
          events.of<Result>("delivery:result").some((r) => r.recordId === other),
        );
        assert.deepEqual(
          throttled(120).map(({ waitMs, at }) => ({ waitMs, at }))[0],
          { waitMs: 2_000, at: t0 },
          "the sixth waits for the one-second window and its margin",
        );
        assert.equal(records.filter((id) => claimedAt(id) === t0).length, 5, "five sent in the first second");
        assert.equal(claimedAt(other), t0, "another user's notification does not wait behind the burst");
        assert.deepEqual(throttled(121), [], "and is never held back");

        clock.advance(2_000);
        const results = await Promise.all(records.map((id) => attemptOf(events, id)));
        assert.deepEqual(
          new Set(results.map((r) => r.status)),
          new Set(["sent"]),
          "every one sent, none failed",
        );
        assert.equal(
          records.filter((id) => claimedAt(id) === t0 + 2_000).length,
          2,
          "the rest in the next second",
        );
        assert.equal(env.fake.requestsFor("botkey000120").length, 7);
        env.fake.setRateLimits(feishuBotLimits);
      }, clock);
    });

    test("10. a stranded pending record is picked up by the retry scan", async () => {
      const clock = createManualClock();
      await env.withApp(async (app, events) => {
        await givenChannel(app, 111, env.fake.flowUrl("flowkey0111"));
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
        assert.equal(env.fake.requestsFor("flowkey0111").length, 0, "not stranded yet");
        clock.advance(3 * 60_000);
        await app.retryLoop.scanOnce();
        assert.equal((await attemptOf(events, record.id)).status, "sent");
        const [request] = env.fake.requestsFor("flowkey0111");
        assert.ok(request);
        assert.equal(
          (request.body.message as { summary: string }).summary,
          "回来看看\n/assistant/conv_asp_111",
        );
      }, clock);
    });
  });
}

function parsedPayload(userId: number, previewId: string): FeishuRequestedPayload {
  return {
    notificationId: 0,
    userId: BigInt(userId),
    triggerId: `ast_${previewId}`,
    previewId,
    triggerType: "unfinished_feedback",
    targetType: "task",
    targetId: 1n,
    dedupeKey: `${userId}:direct:${previewId}`,
    targetUrl: `/assistant/conv_${previewId}`,
    summaryText: "",
    fallbackText: "",
    traceId: "",
    requestedAt: new Date(),
  };
}
