import type { ColumnType, Generated } from "kysely";

/**
 * Table types. Names and columns are SmartFlow's (reference §4.1, §5), so Go producers and the gateway keep
 * working against the same MySQL schema. Times are wall-clock text: in `DATABASE_TIME_ZONE` on MySQL, in UTC
 * on SQLite. They are written only as `DbTraits.time(date)` and read through `DbTraits.readTime`.
 */
export type DbTime = ColumnType<Date | string, string, string>;

/**
 * SmartFlow's int64 ids (`bigint` columns): written as `bigint`; select them with `int64Column` and read
 * them with `toInt64` (db/int64-column.ts), since the drivers return numbers that round past 2^53.
 */
export type DbInt64 = ColumnType<string | number | bigint, bigint, bigint>;

export interface OutboxMessageTable {
  id: Generated<number>;
  /** The event type; the column keeps its legacy name. */
  biz_type: string;
  service_name: string;
  topic: string;
  message_key: string;
  /** The row envelope JSON `{event_id, event_type, event_version, aggregate_id, payload}`. */
  payload: string;
  /** An `OutboxStatus` (src/outbox/outbox-status.ts). */
  status: string;
  retry_count: Generated<number>;
  max_retry: Generated<number>;
  next_retry_at: DbTime | null;
  last_error: string | null;
  /** When a relay claimed the row (SmartFlow's column name). */
  published_at: DbTime | null;
  consumed_at: DbTime | null;
  created_at: DbTime;
  updated_at: DbTime;
  /** Additive: how often the consumer began handling the row (committed before the handler runs). */
  started_attempts: Generated<number>;
  /** Additive: how often that handling ended (with the outcome's write); started − finished = crashes. */
  finished_attempts: Generated<number>;
}

/** `notification_records` (reference §5). Additive columns: `lease_until`, `claim_token`. */
export interface NotificationRecordTable {
  id: Generated<number>;
  /** Always "feishu". */
  channel: string;
  user_id: DbInt64;
  trigger_id: string;
  preview_id: string;
  trigger_type: string;
  target_type: string;
  target_id: DbInt64;
  dedupe_key: string;
  target_url: string;
  summary_text: string | null;
  fallback_text: string | null;
  fallback_used: ColumnType<number | boolean, number | boolean, number | boolean>;
  /** A `RecordStatus` (src/notifications/record-state.ts). */
  status: string;
  attempt_count: Generated<number>;
  max_attempts: Generated<number>;
  next_retry_at: DbTime | null;
  last_error_code: string | null;
  last_error: string | null;
  provider_message_id: string | null;
  provider_request_json: string | null;
  provider_response_json: string | null;
  sent_at: DbTime | null;
  trace_id: string | null;
  /** While `sending`: when the sender's lease ends and the record may be claimed again. */
  lease_until: DbTime | null;
  /** While `sending`: the claim that owns the attempt; every result write is guarded by it. */
  claim_token: string | null;
  created_at: DbTime;
  updated_at: DbTime;
}

/** `user_notification_channels` (reference §5). Additive columns: `webhook_kind`, `signing_secret`. */
export interface UserNotificationChannelTable {
  id: Generated<number>;
  user_id: DbInt64;
  /** Always "feishu_webhook". */
  channel: string;
  enabled: ColumnType<number | boolean, number | boolean, number | boolean>;
  webhook_url: string;
  auth_type: string;
  bearer_token: string;
  last_test_status: string | null;
  last_test_error: string | null;
  last_test_at: DbTime | null;
  /** "flow_trigger" or "group_bot", decided by the URL when the channel is saved. */
  webhook_kind: string;
  /** The group bot's signing secret; "" or NULL (rows the Go gateway wrote) when none. */
  signing_secret: string | null;
  created_at: DbTime;
  updated_at: DbTime;
}

/** Additive: idempotency keys of notifications requested over the RPC (`event_id` → its outbox row). */
export interface NotificationRequestKeyTable {
  event_id: string;
  outbox_id: number;
  dedupe_key: string;
  created_at: DbTime;
}

/**
 * Additive: the send budget of each webhook destination, shared by every instance (sql-send-budget.ts).
 * `destination` is a SHA-256 of the webhook URL, never the URL.
 */
export interface NotificationSendBudgetTable {
  destination: string;
  /** A random token, new at every write: the compare-and-set's guard (a counter could repeat after a prune). */
  version: string;
  /** JSON array of the recent sends' times (ms since the epoch), ascending. */
  sent_at: string;
  /** The newest send (ms since the epoch), for pruning. */
  last_sent_ms: ColumnType<number | string, number, number>;
}

/**
 * The Kysely database type. The outbox table's real name comes from the route (it can be overridden), so
 * queries name it through `outboxTable(route)`, which is typed as this key.
 */
export interface Database {
  notification_outbox_messages: OutboxMessageTable;
  notification_records: NotificationRecordTable;
  user_notification_channels: UserNotificationChannelTable;
  notification_request_keys: NotificationRequestKeyTable;
  notification_send_budgets: NotificationSendBudgetTable;
}

export type OutboxTableName = "notification_outbox_messages";
