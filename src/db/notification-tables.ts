import { type Kysely, sql } from "kysely";
import type { DbTraits } from "./db-traits.ts";
import { ensureColumn, ensureIndex, timeType } from "./schema-steps.ts";

/** The notification tables (reference §5), as migrations 0002–0004 create them; see migrations.ts. */

/** `notification_records`, plus the additive `lease_until` and `claim_token`. */
export async function createNotificationRecords<DB>(db: Kysely<DB>, traits: DbTraits) {
  const mysql = traits.dialect === "mysql";
  const time = timeType(traits);
  await db.schema
    .createTable("notification_records")
    .ifNotExists()
    .addColumn("id", mysql ? "bigint" : "integer", (col) =>
      mysql ? col.autoIncrement().primaryKey() : col.primaryKey().autoIncrement(),
    )
    .addColumn("channel", "varchar(32)", (col) => col.notNull())
    .addColumn("user_id", mysql ? "bigint" : "integer", (col) => col.notNull())
    .addColumn("trigger_id", "varchar(64)", (col) => col.notNull())
    .addColumn("preview_id", "varchar(64)", (col) => col.notNull())
    .addColumn("trigger_type", "varchar(64)", (col) => col.notNull())
    .addColumn("target_type", "varchar(64)", (col) => col.notNull())
    .addColumn("target_id", mysql ? "bigint" : "integer", (col) => col.notNull())
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
    .$call((builder) => (mysql ? builder.modifyEnd(sql`engine=InnoDB default charset=utf8mb4`) : builder))
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
}

/** `user_notification_channels`, plus the additive `webhook_kind` and `signing_secret`. */
export async function createUserNotificationChannels<DB>(db: Kysely<DB>, traits: DbTraits) {
  const mysql = traits.dialect === "mysql";
  const time = timeType(traits);
  await db.schema
    .createTable("user_notification_channels")
    .ifNotExists()
    .addColumn("id", mysql ? "bigint" : "integer", (col) =>
      mysql ? col.autoIncrement().primaryKey() : col.primaryKey().autoIncrement(),
    )
    .addColumn("user_id", mysql ? "bigint" : "integer", (col) => col.notNull())
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
    .$call((builder) => (mysql ? builder.modifyEnd(sql`engine=InnoDB default charset=utf8mb4`) : builder))
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
}

/** `notification_request_keys` (additive): the RequestFeishuNotification RPC's idempotency keys. */
export async function createNotificationRequestKeys<DB>(db: Kysely<DB>, traits: DbTraits) {
  const mysql = traits.dialect === "mysql";
  const time = timeType(traits);
  await db.schema
    .createTable("notification_request_keys")
    .ifNotExists()
    .addColumn("event_id", "varchar(128)", (col) => col.primaryKey())
    .addColumn("outbox_id", "bigint", (col) => col.notNull())
    .addColumn("dedupe_key", "varchar(191)", (col) => col.notNull())
    .addColumn("created_at", time)
    .$call((builder) => (mysql ? builder.modifyEnd(sql`engine=InnoDB default charset=utf8mb4`) : builder))
    .execute();
}

/** `notification_send_budgets` (additive, migration 0006): one row per webhook destination. */
export async function createNotificationSendBudgets<DB>(db: Kysely<DB>, traits: DbTraits) {
  const mysql = traits.dialect === "mysql";
  await db.schema
    .createTable("notification_send_budgets")
    .ifNotExists()
    .addColumn("destination", "varchar(64)", (col) => col.primaryKey())
    .addColumn("version", "varchar(36)", (col) => col.notNull())
    .addColumn("sent_at", "text", (col) => col.notNull())
    .addColumn("last_sent_ms", "bigint", (col) => col.notNull())
    .$call((builder) => (mysql ? builder.modifyEnd(sql`engine=InnoDB default charset=utf8mb4`) : builder))
    .execute();
  await ensureIndex(db, traits, "notification_send_budgets", "idx_send_budget_last_sent", ["last_sent_ms"]);
}

/** 0007: the retention job's scans (src/retention): final rows by status and age, the keys by age. */
export async function addRetentionIndexes<DB>(db: Kysely<DB>, traits: DbTraits) {
  await ensureIndex(db, traits, "notification_records", "idx_notification_retention", [
    "status",
    "updated_at",
  ]);
  await ensureIndex(db, traits, "notification_request_keys", "idx_request_keys_created", ["created_at"]);
}
