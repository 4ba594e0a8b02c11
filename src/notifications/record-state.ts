import { stringifyJson } from "../lib/json-int64.ts";
import type { SendResult } from "./ports/delivery-provider.ts";
import type { AttemptResult, NotificationRecord } from "./record.ts";

/**
 * The life of a notification record, as pure functions: which states there are, which records need a send,
 * and what a finished attempt turns a record into. The SQL adapters (notifications/sql) apply these rules as
 * conditional updates; every write of an attempt is guarded by the claim that made it.
 *
 *   pending ──claim──▶ sending ──attempt──▶ sent | skipped | dead
 *      ▲                  │  ╰──────────────▶ failed ──(due)──claim──▶ sending
 *      │                  ╰─ lease expired: claimable again (marked sending_lease_expired), or dead when no
 *      │                     attempts are left
 *      │   (the retry scan's finds older than DELIVERY_MAX_AGE_MS: dead, `expired`)
 *      ╰── operator retry (failed | dead → pending, one more attempt allowed)
 */
export const RecordStatus = {
  pending: "pending",
  sending: "sending",
  sent: "sent",
  failed: "failed",
  dead: "dead",
  skipped: "skipped",
} as const;
export type RecordStatus = (typeof RecordStatus)[keyof typeof RecordStatus];

export const recordStatuses: readonly RecordStatus[] = Object.values(RecordStatus);

export function isRecordStatus(value: string): value is RecordStatus {
  return (recordStatuses as readonly string[]).includes(value);
}

/** SmartFlow's default; rows written without `max_attempts` get it too. */
export const DEFAULT_MAX_ATTEMPTS = 5;

/** `last_error_code` of a record whose sender's lease ran out: while it is re-sent, or when it ends dead. */
export const SENDING_LEASE_EXPIRED = "sending_lease_expired";
export const LEASE_EXPIRED_MESSAGE = "the previous attempt's sending lease expired before it finished";
export const LEASE_EXHAUSTED_MESSAGE = "the last attempt's sending lease expired and no attempts are left";

/** `last_error_code` of a record an operator sent back to `pending`. */
export const MANUAL_RETRY = "manual_retry";

/**
 * `last_error_code` of a record the retry scan found older than DELIVERY_MAX_AGE_MS: `dead` instead of sent
 * (a notification from last week must not go out today, e.g. after replacing the Go service).
 */
export const EXPIRED = "expired";

export const maxAttemptsOf = (record: Pick<NotificationRecord, "maxAttempts">) =>
  record.maxAttempts > 0 ? record.maxAttempts : DEFAULT_MAX_ATTEMPTS;

/**
 * When a `sending` record's lease ends (ms since the epoch). SmartFlow's Go service kept no `lease_until`: it
 * judged its lease from `updated_at` (`sending AND updated_at <= now - 10m`), so a record it left in `sending`
 * is read the same way, with `leaseMs` = DELIVERY_SENDING_LEASE_MS (sql/record-claims.ts and
 * sql/record-scans.ts say the same in SQL).
 */
export function leaseEndsAt(record: Pick<NotificationRecord, "leaseUntil" | "updatedAt">, leaseMs: number) {
  if (record.leaseUntil) return record.leaseUntil.getTime();
  return record.updatedAt ? record.updatedAt.getTime() + leaseMs : 0;
}

/**
 * Whether a claim may take the record now: `pending`, `failed` and due, or `sending` with an expired lease —
 * each with attempts left. The claim's UPDATE states the same rule in SQL (sql/record-claims.ts).
 */
export function isClaimable(record: NotificationRecord, now: Date, leaseMs: number): boolean {
  if (record.attemptCount >= maxAttemptsOf(record)) return false;
  return needsSend(record, now, leaseMs);
}

/**
 * Whether an event for this record should queue a send: it is waiting (`pending`), due again (`failed`), or
 * its sender's lease ran out. A record being sent elsewhere, or finished, needs nothing (weakness 8).
 */
export function needsSend(record: NotificationRecord, now: Date, leaseMs: number): boolean {
  const at = now.getTime();
  switch (record.status) {
    case RecordStatus.pending:
      return true;
    case RecordStatus.failed:
      return (record.nextRetryAt?.getTime() ?? 0) <= at;
    case RecordStatus.sending:
      return leaseEndsAt(record, leaseMs) <= at;
    default:
      return false;
  }
}

/**
 * What a finished attempt writes. `record.attemptCount` includes this attempt (the claim counted it).
 * Success → `sent`; skipped → `skipped`; a permanent failure → `dead`; a temporary one → `failed` with the
 * next attempt after `retryDelayMs(attempts)`, or `dead` when it was the last attempt.
 */
export function attemptResult(
  record: NotificationRecord,
  claimToken: string,
  sent: SendResult,
  now: Date,
  retryDelayMs: (failures: number) => number,
): AttemptResult {
  const common = {
    id: record.id,
    claimToken,
    requestJson: stringifyJson(sent.requestPayload ?? null),
    responseJson: stringifyJson(sent.responsePayload ?? null),
    sentAt: null,
    providerMessageId: null,
    nextRetryAt: null,
  };
  switch (sent.outcome) {
    case "success":
      return {
        ...common,
        status: RecordStatus.sent,
        lastErrorCode: null,
        lastError: null,
        sentAt: now,
        providerMessageId: sent.providerMessageId ?? null,
      };
    case "skipped":
      return {
        ...common,
        status: RecordStatus.skipped,
        lastErrorCode: sent.errorCode ?? "recipient_missing",
        lastError: sent.errorMessage ?? null,
      };
    case "permanent_fail":
      return {
        ...common,
        status: RecordStatus.dead,
        lastErrorCode: sent.errorCode ?? "payload_invalid",
        lastError: sent.errorMessage ?? null,
      };
    case "temporary_fail": {
      const exhausted = record.attemptCount >= maxAttemptsOf(record);
      return {
        ...common,
        status: exhausted ? RecordStatus.dead : RecordStatus.failed,
        lastErrorCode: sent.errorCode ?? "network_error",
        lastError: sent.errorMessage ?? null,
        nextRetryAt: exhausted ? null : new Date(now.getTime() + retryDelayMs(record.attemptCount)),
      };
    }
  }
}
