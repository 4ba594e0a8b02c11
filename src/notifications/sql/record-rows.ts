import type { Expression, ExpressionBuilder, Kysely, SqlBool } from "kysely";
import type { DbTraits } from "../../db/db-traits.ts";
import { int64Column, toInt64 } from "../../db/int64-column.ts";
import type { Database } from "../../db/schema.ts";
import type { NotificationRecord } from "../record.ts";
import { DEFAULT_MAX_ATTEMPTS, RecordStatus } from "../record-state.ts";

/** The SQL adapter of the records table: one file per caller (intake, claims, scans, queries), sharing this. */
export interface RecordsTable {
  readonly db: Kysely<Database>;
  readonly traits: DbTraits;
  /** DELIVERY_SENDING_LEASE_MS: the lease of a `sending` row without `lease_until` (Go's), from `updated_at`. */
  readonly sendingLeaseMs: number;
}

type RecordsWhere = ExpressionBuilder<Database, "notification_records">;

/**
 * `sending` with its lease over (record-state.ts `leaseEndsAt`): `lease_until` passed, or, on a row SmartFlow's
 * Go service left in `sending` (no `lease_until`), `updated_at` older than the lease, as Go judged it.
 */
export function leaseExpired({ traits, sendingLeaseMs }: RecordsTable, now: Date) {
  const goStale = traits.time(new Date(now.getTime() - sendingLeaseMs));
  return (eb: RecordsWhere): Expression<SqlBool> =>
    eb.and([
      eb("status", "=", RecordStatus.sending),
      eb.or([
        eb("lease_until", "<=", traits.time(now)),
        eb.and([
          eb("lease_until", "is", null),
          eb.or([eb("updated_at", "is", null), eb("updated_at", "<=", goStale)]),
        ]),
      ]),
    ]);
}

/** Every column the domain reads but the two int64 ids, which `selectRecords` reads exactly. */
export const recordColumns = [
  "id",
  "trigger_id",
  "preview_id",
  "trigger_type",
  "target_type",
  "dedupe_key",
  "target_url",
  "summary_text",
  "fallback_text",
  "fallback_used",
  "status",
  "attempt_count",
  "max_attempts",
  "next_retry_at",
  "lease_until",
  "last_error_code",
  "last_error",
  "provider_message_id",
  "sent_at",
  "trace_id",
  "created_at",
  "updated_at",
] as const;

/** Records with every column the domain reads. */
export const selectRecords = ({ db }: RecordsTable) =>
  db
    .selectFrom("notification_records")
    .select([...recordColumns, int64Column("user_id"), int64Column("target_id")]);

type RecordRow = Awaited<ReturnType<ReturnType<typeof selectRecords>["executeTakeFirstOrThrow"]>>;

export function toRecord({ traits }: RecordsTable, row: RecordRow): NotificationRecord {
  return {
    id: row.id,
    userId: toInt64(row.user_id),
    triggerId: row.trigger_id,
    previewId: row.preview_id,
    triggerType: row.trigger_type,
    targetType: row.target_type,
    targetId: toInt64(row.target_id),
    dedupeKey: row.dedupe_key,
    targetUrl: row.target_url,
    summaryText: row.summary_text ?? "",
    fallbackText: row.fallback_text ?? "",
    // A BOOLEAN column reads as 0/1 on both databases.
    fallbackUsed: Boolean(Number(row.fallback_used)),
    status: row.status,
    attemptCount: row.attempt_count,
    maxAttempts: row.max_attempts > 0 ? row.max_attempts : DEFAULT_MAX_ATTEMPTS,
    nextRetryAt: traits.readTime(row.next_retry_at),
    leaseUntil: traits.readTime(row.lease_until),
    lastErrorCode: row.last_error_code,
    lastError: row.last_error,
    providerMessageId: row.provider_message_id,
    sentAt: traits.readTime(row.sent_at),
    traceId: row.trace_id ?? "",
    createdAt: traits.readTime(row.created_at),
    updatedAt: traits.readTime(row.updated_at),
  };
}
