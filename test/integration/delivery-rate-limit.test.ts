import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { App } from "../../src/app.ts";
import { givenChannel, requestNotification, useDeliveryEnv } from "../support/delivery.ts";
import { recordEvents, startApp } from "../support/harness.ts";

type Intake = { outboxId: number; recordId: number };
type Result = { recordId: number; status: string; attemptCount: number; errorCode: string | null };
type Throttled = { userId: bigint; waitMs: number };

/**
 * Feishu's limits are per bot, whichever instance sends: two instances on one database, one topic and one
 * consumer group send to a bot that several users share, and the fake Feishu (which answers 11232 past 5
 * requests in any second or 100 in any minute) never has to refuse one.
 */
describe("Feishu's rate limits across instances (mysql+kafka)", () => {
  // A POST slowed past 1 s by a loaded machine is not what this tests: the timeout is long here.
  const env = useDeliveryEnv("mysql+kafka", { FEISHU_TIMEOUT_MS: "5000" });

  test("150 notifications, six users sharing one bot and two other bots, two instances: no 11232, each sent once", {
    timeout: 240_000,
  }, async () => {
    const apps = [await startApp(env.testEnv), await startApp(env.testEnv)] as const;
    const perApp = apps.map((app) => recordEvents(app));
    const events = recordEvents(...apps);
    try {
      const shared = "limshared000001";
      const owners = new Map<number, string>();
      for (const user of [301, 302, 303, 304, 305, 306]) owners.set(user, shared);
      owners.set(307, "limother000001");
      owners.set(308, "limother000002");
      for (const [user, bot] of owners) await givenChannel(apps[0], user, env.fake.botUrl(bot));
      // Every record taken in by one instance is also submitted to the other, as its retry scan or an
      // operator's retry would: both instances then want every send to the shared bot at once.
      crossSubmit(apps[0], apps[1]);
      crossSubmit(apps[1], apps[0]);
      const previews: string[] = [];
      const userOf = new Map<number, number>();
      for (let i = 0; i < 22; i++) {
        for (const user of [301, 302, 303, 304, 305, 306, 307, 308]) {
          if (previews.length === 150) break;
          if (user >= 307 && i >= 10) continue;
          const previewId = `lim${user}n${i}z`;
          previews.push(previewId);
          userOf.set(await requestNotification(apps[i % 2 === 0 ? 0 : 1], { userId: user, previewId }), user);
        }
      }
      assert.equal(previews.length, 150);
      await events.until(
        "every notification has an attempt",
        () => events.of<Result>("delivery:result").length >= 150,
        200_000,
      );
      const results = events.of<Result>("delivery:result");
      assert.equal(results.length, 150, "one attempt each");
      assert.deepEqual(
        env.fake.rateLimited.map((r) => `${r.key} at ${Math.round(r.at)}`),
        [],
        "Feishu never had to refuse a request",
      );
      assert.deepEqual(
        results.filter((r) => r.status !== "sent" || r.attemptCount !== 1),
        [],
        "each sent at its first attempt",
      );
      for (const previewId of previews) {
        const copies = env.fake.requests.filter((r) => r.raw.includes(`conv_${previewId}`)).length;
        assert.equal(copies, 1, `${previewId} delivered exactly once`);
      }
      assert.equal(env.fake.requestsFor(shared).length, 130);
      const sharedRecords = new Set(
        events
          .of<Intake>("intake:record")
          .filter((e) => (userOf.get(e.outboxId) ?? 0) <= 306)
          .map((e) => e.recordId),
      );
      const sharedBy = perApp.map(
        (recorder) =>
          recorder.of<Result>("delivery:result").filter((r) => sharedRecords.has(r.recordId)).length,
      );
      // Which instance wins each send is a race: one may win them all. Either way each instance took part: it
      // sent to the shared bot, or it was held back by the budget the other's sends had spent (a budget of its
      // own would never have held back an instance that sent nothing).
      const sharedUsers = new Set([301n, 302n, 303n, 304n, 305n, 306n]);
      const heldBack = perApp.map((recorder) =>
        recorder.of<Throttled>("delivery:throttled").some((t) => sharedUsers.has(t.userId)),
      );
      assert.ok(
        sharedBy.every((count, i) => count > 0 || heldBack[i]),
        `each instance sent to the shared bot (${sharedBy.join(" + ")}) or was held back by its budget (${heldBack.join(", ")})`,
      );
      assert.ok(
        events.of<Throttled>("delivery:throttled").some((t) => t.userId === 301n),
        "the shared bot's sends waited for its budget",
      );
    } finally {
      await Promise.all(apps.map((app) => app.stop()));
    }
  });

  test("a bot over its limit does not throttle another bot", async () => {
    await env.withApp(async (app, events) => {
      await givenChannel(app, 320, env.fake.botUrl("limbusy000320"));
      await givenChannel(app, 321, env.fake.botUrl("limcalm000321"));
      for (let i = 0; i < 8; i++) await requestNotification(app, { userId: 320, previewId: `lim320n${i}z` });
      for (let i = 0; i < 5; i++) await requestNotification(app, { userId: 321, previewId: `lim321n${i}z` });
      await events.until("all 13 sent", () => events.of<Result>("delivery:result").length >= 13, 60_000);
      const throttled = events.of<Throttled>("delivery:throttled");
      assert.ok(
        throttled.some((t) => t.userId === 320n),
        "the busy bot waited for its second",
      );
      assert.deepEqual(
        throttled.filter((t) => t.userId === 321n),
        [],
        "the calm bot, with five in its own budget, never did",
      );
      assert.deepEqual(
        env.fake.rateLimited.filter((r) => r.key.startsWith("limbusy") || r.key.startsWith("limcalm")).length,
        0,
      );
    });
  });
});

/** Submits every record `from` takes in to `to`'s dispatcher as well. */
function crossSubmit(from: App, to: App) {
  from.events.on("intake:record", (event) => {
    const { recordId } = event as Intake;
    void from.records.get(recordId).then((record) => {
      if (record) to.dispatcher.submit([{ recordId, userId: record.userId }]);
    });
  });
}
