import { FEISHU_REQUESTED_EVENT } from "../../src/notifications/feishu-requested-payload.ts";
import { requestedPayload } from "./delivery.ts";
import type { TestDatabase } from "./mysql.ts";

/**
 * SmartFlow's tables as its Go services create them (GORM AutoMigrate over the models of reference §4.1 and
 * §5: Go `int` as `bigint`, `string` as `longtext` or the tagged size, times as `datetime(3)`), without any
 * column or index this service adds. Tests create these before this service first starts on the database.
 */
export const goTables = [
  `CREATE TABLE notification_outbox_messages (
    id bigint AUTO_INCREMENT, biz_type varchar(64) NOT NULL, service_name varchar(64) NOT NULL DEFAULT '',
    topic varchar(128) NOT NULL, message_key varchar(128) NOT NULL, payload longtext NOT NULL,
    status varchar(32) NOT NULL, retry_count bigint NOT NULL DEFAULT 0, max_retry bigint NOT NULL DEFAULT 20,
    next_retry_at datetime(3) NULL, last_error text NULL, published_at datetime(3) NULL,
    consumed_at datetime(3) NULL, created_at datetime(3) NULL, updated_at datetime(3) NULL,
    PRIMARY KEY (id), INDEX idx_outbox_status_next (status, next_retry_at, biz_type)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  `CREATE TABLE notification_records (
    id bigint AUTO_INCREMENT, channel varchar(32) NOT NULL, user_id bigint NOT NULL,
    trigger_id varchar(64) NOT NULL, preview_id varchar(64) NOT NULL, trigger_type varchar(64) NOT NULL,
    target_type varchar(64) NOT NULL, target_id bigint NOT NULL, dedupe_key varchar(191) NOT NULL,
    target_url varchar(255) NOT NULL, summary_text text, fallback_text text,
    fallback_used boolean NOT NULL DEFAULT false, status varchar(32) NOT NULL DEFAULT 'pending',
    attempt_count bigint NOT NULL DEFAULT 0, max_attempts bigint NOT NULL DEFAULT 5,
    next_retry_at datetime(3) NULL, last_error_code varchar(64) NULL, last_error text NULL,
    provider_message_id varchar(128) NULL, provider_request_json json NULL, provider_response_json json NULL,
    sent_at datetime(3) NULL, trace_id varchar(128), created_at datetime(3) NULL, updated_at datetime(3) NULL,
    PRIMARY KEY (id), UNIQUE INDEX uk_notification_dedupe (channel, dedupe_key),
    INDEX idx_notification_trigger (trigger_id), INDEX idx_notification_preview (preview_id),
    INDEX idx_notification_user_created (user_id, created_at),
    INDEX idx_notification_status_retry (status, next_retry_at)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  `CREATE TABLE user_notification_channels (
    id bigint AUTO_INCREMENT, user_id bigint NOT NULL, channel varchar(32) NOT NULL,
    enabled boolean NOT NULL DEFAULT true, webhook_url text NOT NULL,
    auth_type varchar(32) NOT NULL DEFAULT 'none', bearer_token text NOT NULL, last_test_status varchar(32),
    last_test_error text, last_test_at datetime(3) NULL, created_at datetime(3) NULL,
    updated_at datetime(3) NULL, PRIMARY KEY (id),
    UNIQUE INDEX uk_user_notification_channel (user_id, channel),
    INDEX idx_user_notification_channel_user (user_id)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
];

/**
 * The Go producers' wall clock, `seconds` from now: they run with `loc=Local` in Asia/Shanghai (UTC+8, no
 * daylight saving), so a `datetime` they write is UTC + 8 h. Computed by MariaDB, not by this service's code.
 */
export const shanghai = (seconds = 0) =>
  `(convert_tz(utc_timestamp(3), '+00:00', '+08:00') + interval ${Math.round(seconds)} second)`;

const MINUTE = 60;
export const DAY = 24 * 60 * MINUTE;

/** Writes SmartFlow's Go rows into a database whose tables Go created (`goTables`). */
export function goWriter(db: TestDatabase) {
  const insert = async (statement: string, params: unknown[]) =>
    ((await db.query(statement, params)) as unknown as { insertId: number }).insertId;
  return {
    /** A `user_notification_channels` row as the Go gateway's Save wrote it (a Flow trigger, no token). */
    channel: (userId: number, webhookUrl: string, enabled = true) =>
      insert(
        `insert into user_notification_channels (user_id, channel, enabled, webhook_url, auth_type, bearer_token,
          created_at, updated_at) values (?, 'feishu_webhook', ?, ?, 'none', '', ${shanghai()}, ${shanghai()})`,
        [userId, enabled, webhookUrl],
      ),

    /**
     * An outbox row as active-scheduler's `CreateMessage` writes it (reference §4.3): status pending and due
     * now, or (`publishedAgo`) as Go's relay left it after publishing.
     */
    outbox(
      topic: string,
      userId: number,
      previewId: string,
      options: { ageSeconds?: number; publishedAgo?: number; version?: string; payload?: unknown } = {},
    ) {
      const envelope = JSON.stringify({
        event_id: previewId,
        event_type: FEISHU_REQUESTED_EVENT,
        event_version: options.version ?? "1",
        aggregate_id: previewId,
        payload: options.payload ?? requestedPayload(userId, previewId),
      });
      const created = shanghai(-(options.ageSeconds ?? 0));
      const published = options.publishedAgo === undefined ? undefined : shanghai(-options.publishedAgo);
      return insert(
        `insert into notification_outbox_messages (biz_type, service_name, topic, message_key, payload, status,
          retry_count, max_retry, next_retry_at, published_at, created_at, updated_at)
          values (?, 'notification', ?, ?, ?, ?, 0, 20, ${published ? "null" : created},
          ${published ?? "null"}, ${created}, ${published ?? created})`,
        [FEISHU_REQUESTED_EVENT, topic, String(userId), envelope, published ? "published" : "pending"],
      );
    },

    /** A `notification_records` row in the state Go's service left it (no lease_until: Go kept none). */
    record(
      userId: number,
      previewId: string,
      state: {
        status: string;
        attempts: number;
        updatedAgo: number;
        createdAgo?: number;
        nextRetryIn?: number;
        lastErrorCode?: string;
      },
    ) {
      const created = shanghai(-(state.createdAgo ?? state.updatedAgo));
      const next = state.nextRetryIn === undefined ? "null" : shanghai(state.nextRetryIn);
      return insert(
        `insert into notification_records (channel, user_id, trigger_id, preview_id, trigger_type, target_type,
          target_id, dedupe_key, target_url, summary_text, fallback_text, fallback_used, status, attempt_count,
          max_attempts, next_retry_at, last_error_code, trace_id, created_at, updated_at)
          values ('feishu', ?, ?, ?, 'unfinished_feedback', 'task', 7, ?, ?, '明天的日程需要调整', '', false, ?, ?, 5,
          ${next}, ?, '', ${created}, ${shanghai(-state.updatedAgo)})`,
        [
          userId,
          `ast_${previewId}`,
          previewId,
          `${userId}:unfinished_feedback:2026-03-02T10:30:00+08:00:${previewId}`,
          `/assistant/conv_${previewId}`,
          state.status,
          state.attempts,
          state.lastErrorCode ?? null,
        ],
      );
    },
  };
}
