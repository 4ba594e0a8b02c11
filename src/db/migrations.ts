import { type Kysely, type Migration, type MigrationProvider, Migrator } from "kysely";
import type { DbTraits } from "./db-traits.ts";
import { widenIdColumns } from "./int64-id-migration.ts";
import {
  addRetentionIndexes,
  createNotificationRecords,
  createNotificationRequestKeys,
  createNotificationSendBudgets,
  createUserNotificationChannels,
} from "./notification-tables.ts";
import { ensureOutboxTable } from "./outbox-table-migration.ts";

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
 * - 0005: `user_id` and `target_id` are `bigint` (SmartFlow's int64), as in the Go services' tables; the
 *   `INT` columns that 0002 and 0003 created before are widened (int64-id-migration.ts).
 * - 0006: `notification_send_budgets (destination primary key, version, sent_at, last_sent_ms)`: Feishu's
 *   per-destination rate limits, shared by every instance (notifications/sql/sql-send-budget.ts).
 * - 0007 and `idx_outbox_retention (status, updated_at)`: the retention job (src/retention) finds final rows
 *   by status and age, and the idempotency keys by `created_at`, without scanning the tables.
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

function staticProvider(migrations: Record<string, Migration>): MigrationProvider {
  return { getMigrations: async () => migrations };
}

export function migrations(traits: DbTraits): Record<string, Migration> {
  return {
    "0002_notification_records": { up: (db) => createNotificationRecords(db, traits) },
    "0003_user_notification_channels": { up: (db) => createUserNotificationChannels(db, traits) },
    "0004_notification_request_keys": { up: (db) => createNotificationRequestKeys(db, traits) },
    "0005_int64_ids": {
      up: async (db) => {
        await widenIdColumns(db, traits);
      },
    },
    "0006_notification_send_budgets": { up: (db) => createNotificationSendBudgets(db, traits) },
    "0007_retention_indexes": { up: (db) => addRetentionIndexes(db, traits) },
  };
}
