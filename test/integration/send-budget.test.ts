import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { App } from "../../src/app.ts";
import { migrateToLatest } from "../../src/db/migrations.ts";
import type { SendBudget } from "../../src/notifications/ports/send-budget.ts";
import { createSqlSendBudget } from "../../src/notifications/sql/sql-send-budget.ts";
import { backends, createTestEnv, query, startApp, type TestEnv } from "../support/harness.ts";

const windows = [
  { limit: 5, windowMs: 1_250 },
  { limit: 100, windowMs: 60_250 },
];
const t0 = Date.parse("2026-03-02T10:00:00Z");

/**
 * The shared send budget's SQL: two instances (two apps, two connection pools, each with its own copy of the
 * rows) taking from one destination at once never get more than the limits between them.
 */
for (const backend of backends) {
  describe(`the shared send budget on ${backend}`, () => {
    let testEnv: TestEnv;
    let apps: App[] = [];
    let first: App;
    before(async () => {
      testEnv = await createTestEnv(backend);
      first = await startApp(testEnv, { start: false });
      apps = [first, await startApp(testEnv, { start: false })];
      await migrateToLatest(first.db.kysely, first.db.traits, { outbox: first.route.table });
    });
    after(async () => {
      for (const app of apps) await app.stop();
      await testEnv.dispose();
    });
    const budgets = () => apps.map((app) => createSqlSendBudget(app.db.kysely, app.db.traits, windows));
    const take = async (budget: SendBudget, key: string, wanted: number, at: number) =>
      (await budget.take(new Map([[key, wanted]]), new Date(at))).get(key) ?? { granted: -1, waitMs: -1 };

    test("two instances racing for one destination get five sends in its second between them", async () => {
      const [a, b] = budgets() as [SendBudget, SendBudget];
      const grants = await Promise.all(
        Array.from({ length: 12 }, (_, i) => take(i % 2 ? a : b, "race", 2, t0)),
      );
      const granted = grants.reduce((sum, g) => sum + g.granted, 0);
      assert.ok(granted <= 5, `granted ${granted}`);
      assert.ok(granted >= 1, "and the race did not starve everyone");
      // Whatever the race left over is granted to a latecomer, and nothing beyond it.
      const rest = await take(a, "race", 10, t0 + 1);
      assert.equal(granted + rest.granted, 5);
      assert.equal(rest.waitMs, 1_249, "the next send waits for the window");
      assert.equal((await take(b, "race", 1, t0 + 1_250)).granted, 1);
    });

    test("racing takes of several destinations at once: each destination's five, no more", async () => {
      const [a, b] = budgets() as [SendBudget, SendBudget];
      const keys = ["multi-1", "multi-2", "multi-3"];
      const wanted = new Map(keys.map((key) => [key, 2]));
      const rounds = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).take(wanted, new Date(t0))),
      );
      for (const key of keys) {
        const granted = rounds.reduce((sum, grants) => sum + (grants.get(key)?.granted ?? 0), 0);
        assert.ok(granted >= 1 && granted <= 5, `${key}: granted ${granted}`);
        const rest = await take(a, key, 10, t0);
        assert.equal(granted + rest.granted, 5, key);
      }
    });

    test("over a minute of alternating takes, no window ever holds more than its limit", async () => {
      const [a, b] = budgets() as [SendBudget, SendBudget];
      const sent: number[] = [];
      for (let at = t0; at < t0 + 75_000; at += 100) {
        const [ga, gb] = await Promise.all([take(a, "minute", 1, at), take(b, "minute", 1, at)]);
        for (let i = 0; i < ga.granted + gb.granted; i++) sent.push(at);
      }
      const most = (windowMs: number) =>
        Math.max(...sent.map((start) => sent.filter((at) => at >= start && at < start + windowMs).length));
      assert.equal(most(1_250), 5);
      assert.equal(most(60_250), 100);
      assert.ok(sent.length > 100, "and the minute's budget came back");
    });

    test("destinations do not throttle each other; idle rows are pruned", async () => {
      const [a] = budgets() as [SendBudget, SendBudget];
      assert.equal((await take(a, "busy", 9, t0)).granted, 5);
      const both = await a.take(
        new Map([
          ["busy", 1],
          ["quiet", 5],
        ]),
        new Date(t0),
      );
      assert.deepEqual(Object.fromEntries(both), {
        busy: { granted: 0, waitMs: 1_250 },
        quiet: { granted: 5, waitMs: 0 },
      });
      const keys = async () =>
        (await query<{ destination: string }>(first, "select destination from notification_send_budgets"))
          .map((row) => row.destination)
          .sort();
      assert.ok((await keys()).includes("quiet"));
      const [late] = budgets() as [SendBudget, SendBudget];
      assert.equal((await take(late, "fresh", 1, t0 + 10 * 60_000)).granted, 1);
      assert.deepEqual(await keys(), ["fresh"], "rows idle for longer than a minute are gone");
    });

    test("sends given back by one instance are room for every instance that reads the row next", async () => {
      const [a, b] = budgets() as [SendBudget, SendBudget];
      assert.equal((await take(a, "lost", 3, t0)).granted, 3);
      assert.equal((await take(b, "lost", 5, t0)).granted, 2, "b reads the row: two left");
      // a's copy is stale (b wrote since): its give-back loses the compare-and-set once, reads, and retries.
      await a.giveBack(new Map([["lost", 2]]), new Date(t0));
      const [late] = budgets() as [SendBudget, SendBudget];
      const rest = await take(late, "lost", 5, t0);
      assert.deepEqual([rest.granted, rest.waitMs], [2, 1_250], "the two given back, and no more");
      // Nothing taken at that instant: nothing to give back.
      await late.giveBack(new Map([["lost", 4]]), new Date(t0 + 7));
      assert.equal((await take(budgets()[0] as SendBudget, "lost", 1, t0 + 8)).granted, 0);
      // A give-back that empties a row leaves it to pruning.
      const [c] = budgets() as [SendBudget, SendBudget];
      assert.equal((await take(c, "emptied", 1, t0)).granted, 1);
      await c.giveBack(new Map([["emptied", 1]]), new Date(t0));
      const rows = await query<{ last_sent_ms: number | string }>(
        first,
        "select last_sent_ms from notification_send_budgets where destination = 'emptied'",
      );
      assert.deepEqual(
        rows.map((row) => Number(row.last_sent_ms)),
        [0],
      );
    });
  });
}
