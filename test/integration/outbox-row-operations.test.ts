import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql, type Transaction } from "kysely";
import type { App } from "../../src/app.ts";
import type { Database } from "../../src/db/schema.ts";
import { FEISHU_REQUESTED_EVENT } from "../../src/notifications/feishu-requested-payload.ts";
import { feishuPayload } from "../support/handlers.ts";
import { backends, createTestEnv, outboxRows, query, startApp, type TestEnv } from "../support/harness.ts";

/** `markDead` and `consumeAndMarkConsumed(id, fn?)` with SmartFlow's guards, on both databases. */
for (const backend of backends) {
  describe(`outbox row operations on ${backend}`, () => {
    let testEnv: TestEnv;
    let app: App;
    before(async () => {
      testEnv = await createTestEnv(backend);
      // Not started: nothing relays or consumes these rows behind the test's back.
      app = await startApp(testEnv, { start: false });
      const { migrateToLatest } = await import("../../src/db/migrations.ts");
      await migrateToLatest(app.db.kysely, app.db.traits, { outbox: app.route.table });
      await query(app, "create table side_effects (note varchar(64) not null)");
    });
    after(async () => {
      await app.db.close();
      await testEnv.dispose();
    });

    const row = async (status: string) => {
      const id = await app.enqueuer.enqueue(app.db.kysely, {
        eventType: FEISHU_REQUESTED_EVENT,
        messageKey: "1",
        payload: feishuPayload(1, `asp_${status}`),
      });
      await query(app, sql`update ${sql.table(app.route.table)} set status = ${status} where id = ${id}`);
      return id;
    };
    const notes = async () =>
      (await query<{ note: string }>(app, "select note from side_effects")).map((r) => r.note);
    const note = (text: string) => async (trx: Transaction<Database>) => {
      await sql`insert into side_effects (note) values (${text})`.execute(trx);
    };

    test("consumeAndMarkConsumed runs fn in the row's transaction and marks it consumed", async () => {
      const id = await row("published");
      assert.equal(await app.outbox.consumeAndMarkConsumed(id, new Date(), note("consumed-with-fn")), true);
      const [after] = await outboxRows(app, [id]);
      assert.equal(after?.status, "consumed");
      assert.ok(after?.consumed_at);
      assert.ok((await notes()).includes("consumed-with-fn"));
      assert.equal(
        await app.outbox.consumeAndMarkConsumed(await row("published"), new Date()),
        true,
        "fn is optional",
      );
    });

    test("consumeAndMarkConsumed does nothing for a missing, consumed or dead row", async () => {
      assert.equal(await app.outbox.consumeAndMarkConsumed(987_654, new Date(), note("missing")), false);
      for (const status of ["consumed", "dead"]) {
        const id = await row(status);
        assert.equal(await app.outbox.consumeAndMarkConsumed(id, new Date(), note(status)), false, status);
        assert.equal((await outboxRows(app, [id]))[0]?.status, status);
      }
      const written = await notes();
      assert.ok(!written.includes("missing") && !written.includes("consumed") && !written.includes("dead"));
    });

    test("when fn fails, its write and the consumed mark roll back together", async () => {
      const id = await row("published");
      await assert.rejects(
        app.outbox.consumeAndMarkConsumed(id, new Date(), async (trx) => {
          await note("rolled-back")(trx);
          throw new Error("the handler's write failed");
        }),
        /handler's write failed/,
      );
      assert.equal((await outboxRows(app, [id]))[0]?.status, "published");
      assert.ok(!(await notes()).includes("rolled-back"));
    });

    test("markDead keeps its reason and never touches consumed or dead rows", async () => {
      const published = await row("published");
      const consumed = await row("consumed");
      const dead = await row("dead");
      assert.equal(await app.outbox.markDead([published, consumed, dead], "operator: poison", new Date()), 1);
      const rows = new Map((await outboxRows(app, [published, consumed, dead])).map((r) => [r.id, r]));
      assert.deepEqual(
        [rows.get(published)?.status, rows.get(published)?.last_error],
        ["dead", "operator: poison"],
      );
      assert.equal(rows.get(consumed)?.status, "consumed");
      assert.equal(rows.get(dead)?.last_error, null);
    });
  });
}
