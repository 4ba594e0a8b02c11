import {
  type ColumnDataType,
  type Expression,
  type Kysely,
  type Migration,
  type MigrationProvider,
  Migrator,
  sql,
} from "kysely";
import type { DbTraits } from "./db-traits.ts";

/**
 * Schema migrations, run at startup on MySQL/MariaDB and on SQLite alike.
 *
 * The tables keep SmartFlow's names, columns and indexes (reference §4.1 and §5). They may already exist,
 * created by SmartFlow's Go services (GORM AutoMigrate) in the shared database, so every step is
 * "create if missing". Additions are additive:
 * - `idx_outbox_claim (status, next_retry_at, id)`: the relay's claim query sorts by `next_retry_at, id`;
 *   with only the original index it sorts every pending row on every batch (measured: ~5k rows/s at a 100k
 *   backlog, against ~32k with this index).
 *
 * Migrations that create a route's table carry the table name in their own name, so overriding a table name
 * creates the new table on the next start.
 */
export interface MigrationTables {
  readonly outbox: string;
}

export async function migrateToLatest<DB>(db: Kysely<DB>, traits: DbTraits, tables: MigrationTables) {
  const migrator = new Migrator({
    db,
    provider: staticProvider(migrations(traits, tables)),
    allowUnorderedMigrations: true,
    migrationTableName: "smartflow_notification_migrations",
    migrationLockTableName: "smartflow_notification_migrations_lock",
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((result) => result.status === "Error");
  if (error || failed) {
    throw new Error(`database migration ${failed?.migrationName ?? ""} failed`, { cause: error });
  }
  return results?.filter((result) => result.status === "Success").map((result) => result.migrationName) ?? [];
}

function staticProvider(migrations: Record<string, Migration>): MigrationProvider {
  return { getMigrations: async () => migrations };
}

export function migrations(traits: DbTraits, tables: MigrationTables): Record<string, Migration> {
  const mysql = traits.dialect === "mysql";
  const time: ColumnDataType | Expression<unknown> = mysql ? sql`datetime(3)` : "text";
  const longText: ColumnDataType | Expression<unknown> = mysql ? sql`longtext` : "text";
  return {
    [`0001_outbox_table:${tables.outbox}`]: {
      async up(db) {
        await db.schema
          .createTable(tables.outbox)
          .ifNotExists()
          .addColumn("id", mysql ? "bigint" : "integer", (col) =>
            mysql ? col.autoIncrement().primaryKey() : col.primaryKey().autoIncrement(),
          )
          .addColumn("biz_type", "varchar(64)", (col) => col.notNull())
          .addColumn("service_name", "varchar(64)", (col) => col.notNull().defaultTo(""))
          .addColumn("topic", "varchar(128)", (col) => col.notNull())
          .addColumn("message_key", "varchar(128)", (col) => col.notNull())
          .addColumn("payload", longText, (col) => col.notNull())
          .addColumn("status", "varchar(32)", (col) => col.notNull())
          .addColumn("retry_count", "integer", (col) => col.notNull().defaultTo(0))
          .addColumn("max_retry", "integer", (col) => col.notNull().defaultTo(20))
          .addColumn("next_retry_at", time)
          .addColumn("last_error", "text")
          .addColumn("published_at", time)
          .addColumn("consumed_at", time)
          .addColumn("created_at", time)
          .addColumn("updated_at", time)
          .$call((builder) =>
            mysql ? builder.modifyEnd(sql`engine=InnoDB default charset=utf8mb4`) : builder,
          )
          .execute();
        await ensureIndex(db, traits, tables.outbox, "idx_outbox_status_next", [
          "status",
          "next_retry_at",
          "biz_type",
        ]);
        await ensureIndex(db, traits, tables.outbox, "idx_outbox_claim", ["status", "next_retry_at", "id"]);
      },
    },
  };
}

/** CREATE INDEX unless an index of that name exists (MySQL 8 has no `IF NOT EXISTS` for indexes). */
export async function ensureIndex<DB>(
  db: Kysely<DB>,
  traits: DbTraits,
  table: string,
  name: string,
  columns: string[],
  unique = false,
) {
  if (traits.dialect === "mysql") {
    const { rows } = await sql<{ n: number }>`
      select count(*) as n from information_schema.statistics
      where table_schema = database() and table_name = ${table} and index_name = ${name}`.execute(db);
    if (Number(rows[0]?.n ?? 0) > 0) return;
  }
  let builder = db.schema.createIndex(name).on(table).columns(columns);
  if (unique) builder = builder.unique();
  if (traits.dialect === "sqlite") builder = builder.ifNotExists();
  await builder.execute();
}
