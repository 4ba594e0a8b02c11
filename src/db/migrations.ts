import {
  type ColumnDataType,
  type ColumnDefinitionBuilder,
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
 * - `notification_records.lease_until` and `.claim_token`: the persisted sending lease and the claim that owns
 *   an attempt (weakness 11: the original kept the lease only in `updated_at` and lost its marker).
 * - `user_notification_channels.webhook_kind` (`flow_trigger` | `group_bot`) and `.signing_secret` (group
 *   bots' optional signing secret).
 * - `notification_request_keys (event_id primary key, outbox_id, dedupe_key, created_at)`: makes the
 *   RequestFeishuNotification RPC idempotent on `event_id` (written in the same transaction as the outbox
 *   row).
 *
 * The outbox table's name comes from the route and may be overridden, so it is not a migration: it is ensured
 * (created if missing, indexes added if missing) on every start, outside the migrator, whose history would
 * otherwise break when the name changes.
 */
export interface MigrationTables {
  readonly outbox: string;
}

export async function migrateToLatest<DB>(db: Kysely<DB>, traits: DbTraits, tables: MigrationTables) {
  const migrator = new Migrator({
    db,
    provider: staticProvider(migrations(traits)),
    allowUnorderedMigrations: true,
    migrationTableName: "smartflow_notification_migrations",
    migrationLockTableName: "smartflow_notification_migrations_lock",
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((result) => result.status === "Error");
  if (error || failed) {
    throw new Error(`database migration ${failed?.migrationName ?? ""} failed`, { cause: error });
  }
  await ensureOutboxTable(db, traits, tables.outbox);
  return results?.filter((result) => result.status === "Success").map((result) => result.migrationName) ?? [];
}

/** The route's outbox table with SmartFlow's columns and index, plus the claim index. Idempotent. */
export async function ensureOutboxTable<DB>(db: Kysely<DB>, traits: DbTraits, table: string) {
  const mysql = traits.dialect === "mysql";
  const time: ColumnDataType | Expression<unknown> = mysql ? sql`datetime(3)` : "text";
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
  await ensureIndex(db, traits, table, "idx_outbox_status_next", ["status", "next_retry_at", "biz_type"]);
  await ensureIndex(db, traits, table, "idx_outbox_claim", ["status", "next_retry_at", "id"]);
}

function staticProvider(migrations: Record<string, Migration>): MigrationProvider {
  return { getMigrations: async () => migrations };
}

export function migrations(traits: DbTraits): Record<string, Migration> {
  const mysql = traits.dialect === "mysql";
  const time: ColumnDataType | Expression<unknown> = mysql ? sql`datetime(3)` : "text";
  return {
    "0002_notification_records": {
      async up(db) {
        await db.schema
          .createTable("notification_records")
          .ifNotExists()
          .addColumn("id", mysql ? "bigint" : "integer", (col) =>
            mysql ? col.autoIncrement().primaryKey() : col.primaryKey().autoIncrement(),
          )
          .addColumn("channel", "varchar(32)", (col) => col.notNull())
          .addColumn("user_id", "integer", (col) => col.notNull())
          .addColumn("trigger_id", "varchar(64)", (col) => col.notNull())
          .addColumn("preview_id", "varchar(64)", (col) => col.notNull())
          .addColumn("trigger_type", "varchar(64)", (col) => col.notNull())
          .addColumn("target_type", "varchar(64)", (col) => col.notNull())
          .addColumn("target_id", "integer", (col) => col.notNull())
          .addColumn("dedupe_key", "varchar(191)", (col) => col.notNull())
          .addColumn("target_url", "varchar(255)", (col) => col.notNull())
          .addColumn("summary_text", "text")
          .addColumn("fallback_text", "text")
          .addColumn("fallback_used", "boolean", (col) => col.notNull().defaultTo(false))
          .addColumn("status", "varchar(32)", (col) => col.notNull().defaultTo("pending"))
          .addColumn("attempt_count", "integer", (col) => col.notNull().defaultTo(0))
          .addColumn("max_attempts", "integer", (col) => col.notNull().defaultTo(5))
          .addColumn("next_retry_at", time)
          .addColumn("last_error_code", "varchar(64)")
          .addColumn("last_error", "text")
          .addColumn("provider_message_id", "varchar(128)")
          .addColumn("provider_request_json", mysql ? "json" : "text")
          .addColumn("provider_response_json", mysql ? "json" : "text")
          .addColumn("sent_at", time)
          .addColumn("trace_id", "varchar(128)")
          .addColumn("created_at", time)
          .addColumn("updated_at", time)
          .$call((builder) =>
            mysql ? builder.modifyEnd(sql`engine=InnoDB default charset=utf8mb4`) : builder,
          )
          .execute();
        await ensureColumn(db, traits, "notification_records", "lease_until", time);
        await ensureColumn(db, traits, "notification_records", "claim_token", "varchar(64)");
        await ensureIndex(
          db,
          traits,
          "notification_records",
          "uk_notification_dedupe",
          ["channel", "dedupe_key"],
          true,
        );
        await ensureIndex(db, traits, "notification_records", "idx_notification_trigger", ["trigger_id"]);
        await ensureIndex(db, traits, "notification_records", "idx_notification_preview", ["preview_id"]);
        await ensureIndex(db, traits, "notification_records", "idx_notification_user_created", [
          "user_id",
          "created_at",
        ]);
        await ensureIndex(db, traits, "notification_records", "idx_notification_status_retry", [
          "status",
          "next_retry_at",
        ]);
      },
    },
    "0003_user_notification_channels": {
      async up(db) {
        await db.schema
          .createTable("user_notification_channels")
          .ifNotExists()
          .addColumn("id", mysql ? "bigint" : "integer", (col) =>
            mysql ? col.autoIncrement().primaryKey() : col.primaryKey().autoIncrement(),
          )
          .addColumn("user_id", "integer", (col) => col.notNull())
          .addColumn("channel", "varchar(32)", (col) => col.notNull())
          .addColumn("enabled", "boolean", (col) => col.notNull().defaultTo(true))
          .addColumn("webhook_url", "text", (col) => col.notNull())
          .addColumn("auth_type", "varchar(32)", (col) => col.notNull().defaultTo("none"))
          .addColumn("bearer_token", "text", (col) => col.notNull())
          .addColumn("last_test_status", "varchar(32)")
          .addColumn("last_test_error", "text")
          .addColumn("last_test_at", time)
          .addColumn("created_at", time)
          .addColumn("updated_at", time)
          .$call((builder) =>
            mysql ? builder.modifyEnd(sql`engine=InnoDB default charset=utf8mb4`) : builder,
          )
          .execute();
        await ensureColumn(db, traits, "user_notification_channels", "webhook_kind", "varchar(32)", (col) =>
          col.notNull().defaultTo("flow_trigger"),
        );
        await ensureColumn(db, traits, "user_notification_channels", "signing_secret", "text", (col) =>
          mysql ? col : col.notNull().defaultTo(""),
        );
        await ensureIndex(
          db,
          traits,
          "user_notification_channels",
          "uk_user_notification_channel",
          ["user_id", "channel"],
          true,
        );
        await ensureIndex(db, traits, "user_notification_channels", "idx_user_notification_channel_user", [
          "user_id",
        ]);
      },
    },
    "0004_notification_request_keys": {
      async up(db) {
        await db.schema
          .createTable("notification_request_keys")
          .ifNotExists()
          .addColumn("event_id", "varchar(128)", (col) => col.primaryKey())
          .addColumn("outbox_id", "bigint", (col) => col.notNull())
          .addColumn("dedupe_key", "varchar(191)", (col) => col.notNull())
          .addColumn("created_at", time)
          .$call((builder) =>
            mysql ? builder.modifyEnd(sql`engine=InnoDB default charset=utf8mb4`) : builder,
          )
          .execute();
      },
    },
  };
}

/** ALTER TABLE … ADD COLUMN unless the column exists (the table may predate this service). */
export async function ensureColumn<DB>(
  db: Kysely<DB>,
  traits: DbTraits,
  table: string,
  column: string,
  type: ColumnDataType | Expression<unknown>,
  build: (col: ColumnDefinitionBuilder) => ColumnDefinitionBuilder = (col) => col,
) {
  const exists =
    traits.dialect === "mysql"
      ? Number(
          (
            await sql<{ n: number }>`select count(*) as n from information_schema.columns
              where table_schema = database() and table_name = ${table} and column_name = ${column}`.execute(
              db,
            )
          ).rows[0]?.n ?? 0,
        ) > 0
      : (await sql<{ name: string }>`select name from pragma_table_info(${table})`.execute(db)).rows.some(
          (row) => row.name === column,
        );
  if (!exists) await db.schema.alterTable(table).addColumn(column, type, build).execute();
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
  // SQLite's index names are global, not per table: qualify them so two outbox tables can coexist.
  let builder = db.schema
    .createIndex(traits.dialect === "sqlite" ? `${table}_${name}` : name)
    .on(table)
    .columns(columns);
  if (unique) builder = builder.unique();
  if (traits.dialect === "sqlite") builder = builder.ifNotExists();
  await builder.execute();
}
