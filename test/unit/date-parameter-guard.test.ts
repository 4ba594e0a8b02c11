import assert from "node:assert/strict";
import { test } from "node:test";
import { DummyDriver, Kysely, MysqlAdapter, MysqlIntrospector, MysqlQueryCompiler, sql } from "kysely";
import { DateParameterGuard } from "../../src/db/date-parameter-guard.ts";
import type { Database } from "../../src/db/schema.ts";

/** Compiles MySQL without a server, through the guard the MySQL Kysely runs with. */
const db = new Kysely<Database>({
  dialect: {
    createAdapter: () => new MysqlAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (k) => new MysqlIntrospector(k),
    createQueryCompiler: () => new MysqlQueryCompiler(),
  },
  plugins: [new DateParameterGuard()],
});

test("a query that binds a Date is refused, wherever the Date is; wall-clock text passes", () => {
  const date = new Date("2026-03-02T02:41:00Z") as unknown as string;
  const refused = [
    db.updateTable("notification_records").set({ updated_at: date }).where("id", "=", 1),
    db.selectFrom("notification_records").select("id").where("next_retry_at", "<=", date),
    db
      .selectFrom("notification_records")
      .select("id")
      .where("created_at", "in", ["2026-03-02 10:41:00", date]),
    db.selectFrom("notification_records").select("id").where(sql<boolean>`lease_until <= ${date}`),
  ];
  for (const query of refused) assert.throws(() => query.compile(), /a Date was bound to a query/);
  const text = db
    .updateTable("notification_records")
    .set({ updated_at: "2026-03-02 10:41:00.000", last_error: "x".repeat(10_000) })
    .where("id", "in", [1, 2, 3]);
  assert.doesNotThrow(() => text.compile());
});
