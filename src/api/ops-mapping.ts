import { create } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type NotificationRecord as NotificationRecordMessage,
  NotificationRecordSchema,
  type OutboxMessage,
  OutboxMessageSchema,
  RecordStatus as RecordStatusEnum,
} from "../gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import { AppError } from "../lib/errors.ts";
import { RECORD_CHANNEL_NAME } from "../notifications/channel.ts";
import { isUserId, type UserId } from "../notifications/ids.ts";
import type { NotificationRecord } from "../notifications/record.ts";
import { RecordStatus } from "../notifications/record-state.ts";
import type { DeadMessage } from "../outbox/store/operations-store.ts";

/** The operations API's request checks and proto ⇄ domain mapping (ops-handlers.ts uses them). */

const statusByEnum = new Map<RecordStatusEnum, RecordStatus>([
  [RecordStatusEnum.PENDING, RecordStatus.pending],
  [RecordStatusEnum.SENDING, RecordStatus.sending],
  [RecordStatusEnum.SENT, RecordStatus.sent],
  [RecordStatusEnum.FAILED, RecordStatus.failed],
  [RecordStatusEnum.DEAD, RecordStatus.dead],
  [RecordStatusEnum.SKIPPED, RecordStatus.skipped],
]);
const enumByStatus = new Map<string, RecordStatusEnum>([...statusByEnum].map(([k, v]) => [v, k]));

export const invalid = (field: string, message: string) =>
  new AppError("invalid_argument", `${field}: ${message}`, { field });

/** The status filter of a listing: UNSPECIFIED is none; an unknown value is invalid. */
export function statusFilter(value: RecordStatusEnum): RecordStatus | undefined {
  if (value === RecordStatusEnum.UNSPECIFIED) return undefined;
  const status = statusByEnum.get(value);
  if (!status) throw invalid("status", "is not a known status");
  return status;
}

/** A user id from the wire: 1 … 2^63 − 1 (all an int64 holds above 0); anything else is invalid. */
export function userIdOf(value: bigint, field: string): UserId {
  if (!isUserId(value)) throw invalid(field, "must be a positive integer");
  return value;
}

/**
 * A record or outbox id from the wire: not positive is invalid; past 2^53 it is a valid id that names no row
 * (this service's auto-increment keys never get there), so `undefined`: not found, nothing replayed.
 */
export function rowIdOf(value: bigint, field: string): number | undefined {
  if (value <= 0n) throw invalid(field, "must be a positive integer");
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}

/** google.protobuf.Timestamp's valid range (0001-01-01 to 9999-12-31); anything else is not a time. */
export function validTimestamp(value: Timestamp, field: string): Date {
  const inRange = value.seconds >= -62_135_596_800n && value.seconds <= 253_402_300_799n;
  if (!inRange || value.nanos < 0 || value.nanos > 999_999_999)
    throw invalid(field, "must be a valid timestamp");
  return timestampDate(value);
}

export function pageSize(value: number, field = "page_size"): number {
  if (value === 0) return 50;
  if (value < 1 || value > 500) throw invalid(field, "must be between 1 and 500");
  return value;
}

/** Page tokens are opaque to callers: the last id seen, base64url-encoded. */
export function decodePageToken(token: string): number | undefined {
  if (!token) return undefined;
  const match = /^id:(\d{1,16})$/.exec(Buffer.from(token, "base64url").toString("utf8"));
  if (!match || !Number.isSafeInteger(Number(match[1])))
    throw invalid("page_token", "is not a token this service issued");
  return Number(match[1]);
}

export function encodePageToken(lastId: number | undefined, full: boolean): string {
  return full && lastId !== undefined ? Buffer.from(`id:${lastId}`).toString("base64url") : "";
}

/** Why an operator acted, as recorded on the row: who, when, and their reason if they gave one. */
export function operatorReason(action: string, at: Date, reason: string): string {
  return `${action} by operator at ${at.toISOString()}${reason.trim() ? `: ${reason.trim()}` : ""}`;
}

const ts = (date: Date | null) => (date ? timestampFromDate(date) : undefined);

export function recordMessage(record: NotificationRecord): NotificationRecordMessage {
  return create(NotificationRecordSchema, {
    id: BigInt(record.id),
    userId: record.userId,
    channel: RECORD_CHANNEL_NAME,
    status: enumByStatus.get(record.status) ?? RecordStatusEnum.UNSPECIFIED,
    triggerId: record.triggerId,
    previewId: record.previewId,
    triggerType: record.triggerType,
    targetType: record.targetType,
    targetId: record.targetId,
    dedupeKey: record.dedupeKey,
    targetUrl: record.targetUrl,
    summaryText: record.summaryText,
    fallbackText: record.fallbackText,
    fallbackUsed: record.fallbackUsed,
    attemptCount: record.attemptCount,
    maxAttempts: record.maxAttempts,
    nextRetryTime: ts(record.nextRetryAt),
    lastErrorCode: record.lastErrorCode ?? "",
    lastError: record.lastError ?? "",
    leaseExpireTime: record.status === RecordStatus.sending ? ts(record.leaseUntil) : undefined,
    providerMessageId: record.providerMessageId ?? "",
    sentTime: ts(record.sentAt),
    traceId: record.traceId,
    createTime: ts(record.createdAt),
    updateTime: ts(record.updatedAt),
  });
}

export function outboxMessage(row: DeadMessage): OutboxMessage {
  return create(OutboxMessageSchema, {
    id: BigInt(row.id),
    eventType: row.eventType,
    serviceName: row.serviceName,
    topic: row.topic,
    messageKey: row.messageKey,
    status: row.status,
    retryCount: row.retryCount,
    maxRetry: row.maxRetry,
    lastError: row.lastError,
    payloadJson: row.payload,
    createTime: ts(row.createdAt),
    updateTime: ts(row.updatedAt),
  });
}
