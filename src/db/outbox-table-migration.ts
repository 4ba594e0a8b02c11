import { type Kysely, sql } from "kysely";
import type { DbTraits } from "./db-traits.ts";
import { ensureColumn, ensureIndex, timeType } from "./schema-steps.ts";

/**
 * The route's outbox table with SmartFlow's columns and index, plus the claim index and the attempt counters
 * (`started_attempts`, `finished_attempts`: how often the consumer began and ended handling the row; a gap
 * means the process died while handling it). Idempotent, and additive on a table SmartFlow's Go services
 * created: the counters default to 0, so the Go producers' inserts, which do not name them, still work.
 */
export async function ensureOutboxTable<DB>(db: Kysely<DB>, traits: DbTraits, table: string) {
  const mysql = traits.dialect === "mysql";
  const time = timeType(traits);
  await db.schema
    .createTable(table)
    .ifNotExists()
    .addColumn("id", mysql ? "bigint" : "integer", (col) =>
      mysql ? col.autoIncrement().primaryKey() : col.primaryKey().autoIncrement(),
    )
    .addColumn("biz_type", "varchar(64)", (col) => col.notNull())
    .addColumn("service_name", "varchar(64)", (col) => col.notNull().defaultTo(""))
    .addColumn("topic", "varchar(128)", (col) => col.notNull())
    .addColumn("message_key", "varchar(128)", (col) => col.notNull())
    .addColumn("payload", mysql ? sql`longtext` : "text", (col) => col.notNull())
    .addColumn("status", "varchar(32)", (col) => col.notNull())
    .addColumn("retry_count", "integer", (col) => col.notNull().defaultTo(0))
    .addColumn("max_retry", "integer", (col) => col.notNull().defaultTo(20))
    .addColumn("next_retry_at", time)
    .addColumn("last_error", "text")
    .addColumn("published_at", time)
    .addColumn("consumed_at", time)
    .addColumn("created_at", time)
    .addColumn("updated_at", time)
    .$call((builder) => (mysql ? builder.modifyEnd(sql`engine=InnoDB default charset=utf8mb4`) : builder))
    .execute();
  for (const column of ["started_attempts", "finished_attempts"]) {
    await ensureColumn(db, traits, table, column, "integer", (col) => col.notNull().defaultTo(0));
  }
  await ensureIndex(db, traits, table, "idx_outbox_status_next", ["status", "next_retry_at", "biz_type"]);
  await ensureIndex(db, traits, table, "idx_outbox_claim", ["status", "next_retry_at", "id"]);
  await ensureIndex(db, traits, table, "idx_outbox_retention", ["status", "updated_at"]);
}
