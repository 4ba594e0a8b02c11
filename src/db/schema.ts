import type { ColumnType, Generated } from "kysely";

/**
 * Table types. Names and columns are SmartFlow's (reference §4.1, §5), so Go producers and the gateway keep
 * working against the same MySQL schema. Times are `Date` on MySQL and ISO-like UTC text on SQLite; read them
 * through `DbTraits.readTime`.
 */
export type DbTime = ColumnType<Date | string, Date | string, Date | string>;

export const OutboxStatus = {
  pending: "pending",
  published: "published",
  consumed: "consumed",
  dead: "dead",
} as const;
export type OutboxStatus = (typeof OutboxStatus)[keyof typeof OutboxStatus];

export interface OutboxMessageTable {
  id: Generated<number>;
  /** The event type; the column keeps its legacy name. */
  biz_type: string;
  service_name: string;
  topic: string;
  message_key: string;
  /** The row envelope JSON `{event_id, event_type, event_version, aggregate_id, payload}`. */
  payload: string;
  status: string;
  retry_count: Generated<number>;
  max_retry: Generated<number>;
  next_retry_at: DbTime | null;
  last_error: string | null;
  published_at: DbTime | null;
  consumed_at: DbTime | null;
  created_at: DbTime;
  updated_at: DbTime;
}

/**
 * The Kysely database type. The outbox table's real name comes from the route (it can be overridden), so
 * queries name it through `outboxTable(route)`, which is typed as this key.
 */
export interface Database {
  notification_outbox_messages: OutboxMessageTable;
}

export type OutboxTableName = "notification_outbox_messages";
