import { create } from "@bufbuild/protobuf";
import { durationFromMs, type Timestamp, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type GetNotificationRecordRequest,
  GetNotificationRecordResponseSchema,
  GetStatsResponseSchema,
  type ListDeadOutboxMessagesRequest,
  ListDeadOutboxMessagesResponseSchema,
  type ListNotificationRecordsRequest,
  ListNotificationRecordsResponseSchema,
  NotificationOpsService,
  type NotificationRecord,
  NotificationRecordSchema,
  OutboxMessageSchema,
  RecordStatus as RecordStatusEnum,
  type ReplayOutboxMessagesRequest,
  ReplayOutboxMessagesResponseSchema,
  type RequestFeishuNotificationRequest,
  RequestFeishuNotificationResponseSchema,
  type RetryNotificationRecordRequest,
  RetryNotificationRecordResponseSchema,
} from "../gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import type { Clock } from "../lib/clock.ts";
import { AppError } from "../lib/errors.ts";
import type { DeliveryDispatcher } from "../notifications/delivery-dispatcher.ts";
import type { NotificationRequests } from "../notifications/notification-requests.ts";
import type { RecordRow, RecordStore } from "../notifications/record-store.ts";
import type { OutboxStore } from "../outbox/outbox-store.ts";
import { throwIfAborted } from "./error-mapping.ts";
import type { ServiceBinding } from "./rpc-binding.ts";

/** Starts a step only while the call is still wanted (the transport answers the deadline itself). */
function stepIn<T>(signal: AbortSignal, step: () => Promise<T>): Promise<T> {
  throwIfAborted(signal);
  return step();
}

const statusNames: Record<number, string> = {
  [RecordStatusEnum.PENDING]: "pending",
  [RecordStatusEnum.SENDING]: "sending",
  [RecordStatusEnum.SENT]: "sent",
  [RecordStatusEnum.FAILED]: "failed",
  [RecordStatusEnum.DEAD]: "dead",
  [RecordStatusEnum.SKIPPED]: "skipped",
};
const statusValues = Object.fromEntries(Object.entries(statusNames).map(([k, v]) => [v, Number(k)]));

const invalid = (field: string, message: string) =>
  new AppError("invalid_argument", `${field}: ${message}`, { field });

function positiveId(value: bigint, field: string): number {
  if (value <= 0n || value > BigInt(Number.MAX_SAFE_INTEGER))
    throw invalid(field, "must be a positive integer");
  return Number(value);
}

/** google.protobuf.Timestamp's valid range (0001-01-01 to 9999-12-31); anything else is not a time. */
function validTimestamp(value: Timestamp, field: string): Date {
  const inRange = value.seconds >= -62_135_596_800n && value.seconds <= 253_402_300_799n;
  if (!inRange || value.nanos < 0 || value.nanos > 999_999_999)
    throw invalid(field, "must be a valid timestamp");
  return timestampDate(value);
}

function pageSize(value: number, field = "page_size"): number {
  if (value === 0) return 50;
  if (value < 1 || value > 500) throw invalid(field, "must be between 1 and 500");
  return value;
}

/** Page tokens are opaque to callers: the last id seen, base64url-encoded. */
function decodeToken(token: string): number | undefined {
  if (!token) return undefined;
  const match = /^id:(\d{1,16})$/.exec(Buffer.from(token, "base64url").toString("utf8"));
  if (!match) throw invalid("page_token", "is not a token this service issued");
  return Number(match[1]);
}

function encodeToken(lastId: number | undefined, full: boolean): string {
  return full && lastId !== undefined ? Buffer.from(`id:${lastId}`).toString("base64url") : "";
}

const ts = (date: Date | null) => (date ? timestampFromDate(date) : undefined);

function toRecord(row: RecordRow): NotificationRecord {
  return create(NotificationRecordSchema, {
    id: BigInt(row.id),
    userId: BigInt(row.userId),
    channel: "feishu",
    status: statusValues[row.status] ?? RecordStatusEnum.UNSPECIFIED,
    triggerId: row.triggerId,
    previewId: row.previewId,
    triggerType: row.triggerType,
    targetType: row.targetType,
    targetId: BigInt(row.targetId),
    dedupeKey: row.dedupeKey,
    targetUrl: row.targetUrl,
    summaryText: row.summaryText,
    fallbackText: row.fallbackText,
    fallbackUsed: row.fallbackUsed,
    attemptCount: row.attemptCount,
    maxAttempts: row.maxAttempts,
    nextRetryTime: ts(row.nextRetryAt),
    lastErrorCode: row.lastErrorCode ?? "",
    lastError: row.lastError ?? "",
    leaseExpireTime: row.status === "sending" ? ts(row.leaseUntil) : undefined,
    providerMessageId: row.providerMessageId ?? "",
    sentTime: ts(row.sentAt),
    traceId: row.traceId,
    createTime: ts(row.createdAt),
    updateTime: ts(row.updatedAt),
  });
}

/** `smartflow.notification.v1.NotificationOpsService`: inspect and repair without SQL. */
export function opsBinding(deps: {
  readonly records: RecordStore;
  readonly outbox: OutboxStore;
  readonly requests: NotificationRequests;
  readonly dispatcher: DeliveryDispatcher;
  readonly wakeRelay: () => void;
  readonly clock: Clock;
}): ServiceBinding {
  const { records, outbox, requests, dispatcher, clock } = deps;
  return {
    service: NotificationOpsService,
    errorStyle: "v1",
    requiresToken: true,
    handlers: {
      listNotificationRecords: async (request, { signal }) => {
        const r = request as ListNotificationRecordsRequest;
        const userId = positiveId(r.userId, "user_id");
        const status = r.status === RecordStatusEnum.UNSPECIFIED ? undefined : statusNames[r.status];
        if (r.status !== RecordStatusEnum.UNSPECIFIED && !status)
          throw invalid("status", "is not a known status");
        const size = pageSize(r.pageSize);
        const rows = await stepIn(signal, () =>
          records.listByUser(userId, status, size, decodeToken(r.pageToken)),
        );
        return create(ListNotificationRecordsResponseSchema, {
          records: rows.map(toRecord),
          nextPageToken: encodeToken(rows.at(-1)?.id, rows.length === size),
        });
      },
      getNotificationRecord: async (request, { signal }) => {
        const id = positiveId((request as GetNotificationRecordRequest).id, "id");
        const row = await stepIn(signal, () => records.get(id));
        if (!row) throw new AppError("not_found", `notification record ${id} does not exist`);
        return create(GetNotificationRecordResponseSchema, { record: toRecord(row) });
      },
      retryNotificationRecord: async (request, { signal }) => {
        const r = request as RetryNotificationRecordRequest;
        const id = positiveId(r.id, "id");
        const reason = `retried by operator at ${clock.now().toISOString()}${r.reason.trim() ? `: ${r.reason.trim()}` : ""}`;
        const retried = await stepIn(signal, () => records.retryNow(id, reason, clock.now()));
        const row = await stepIn(signal, () => records.get(id));
        if (!row) throw new AppError("not_found", `notification record ${id} does not exist`);
        if (!retried) {
          throw new AppError(
            "failed_precondition",
            `record ${id} is ${row.status}; only failed or dead records can be retried`,
          );
        }
        dispatcher.submit([{ recordId: row.id, userId: row.userId }]);
        return create(RetryNotificationRecordResponseSchema, { record: toRecord(row) });
      },
      listDeadOutboxMessages: async (request, { signal }) => {
        const r = request as ListDeadOutboxMessagesRequest;
        const size = pageSize(r.pageSize);
        const rows = await stepIn(signal, () =>
          outbox.listDead(size, decodeToken(r.pageToken), r.eventType.trim() || undefined),
        );
        return create(ListDeadOutboxMessagesResponseSchema, {
          messages: rows.map((row) =>
            create(OutboxMessageSchema, {
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
            }),
          ),
          nextPageToken: encodeToken(rows.at(-1)?.id, rows.length === size),
        });
      },
      replayOutboxMessages: async (request, { signal }) => {
        const r = request as ReplayOutboxMessagesRequest;
        const reason = `replayed by operator at ${clock.now().toISOString()}${r.reason.trim() ? `: ${r.reason.trim()}` : ""}`;
        let selector: Parameters<OutboxStore["replayDead"]>[0];
        if (r.selector.case === "ids") {
          const ids = r.selector.value.ids;
          if (ids.length === 0 || ids.length > 1000) throw invalid("ids.ids", "must name 1 to 1000 messages");
          selector = { ids: ids.map((id) => positiveId(id, "ids.ids")) };
        } else if (r.selector.case === "filter") {
          const f = r.selector.value;
          if (f.limit < 0 || f.limit > 10_000) throw invalid("filter.limit", "must be between 0 and 10000");
          selector = {
            eventType: f.eventType.trim(),
            errorContains: f.errorContains,
            limit: f.limit || 1_000,
          };
        } else {
          throw invalid("selector", "set ids or filter");
        }
        const replayed = await stepIn(signal, () => outbox.replayDead(selector, reason, clock.now()));
        if (replayed.length > 0) deps.wakeRelay();
        return create(ReplayOutboxMessagesResponseSchema, {
          replayedCount: replayed.length,
          ids: replayed.map((id) => BigInt(id)),
        });
      },
      requestFeishuNotification: async (request, { signal }) => {
        const r = request as RequestFeishuNotificationRequest;
        if (r.userId <= 0n || r.userId > BigInt(Number.MAX_SAFE_INTEGER))
          throw invalid("user_id", "must be a positive integer");
        const requestedAt = r.requestedTime ? validTimestamp(r.requestedTime, "requested_time") : clock.now();
        const result = await stepIn(signal, () =>
          requests.request({
            eventId: r.eventId,
            userId: Number(r.userId),
            triggerId: r.triggerId,
            previewId: r.previewId,
            triggerType: r.triggerType,
            targetType: r.targetType,
            targetId: Number(r.targetId),
            dedupeKey: r.dedupeKey,
            targetUrl: r.targetUrl,
            summaryText: r.summaryText,
            fallbackText: r.fallbackText,
            traceId: r.traceId,
            requestedAt,
          }),
        );
        return create(RequestFeishuNotificationResponseSchema, {
          outboxId: BigInt(result.outboxId),
          duplicate: result.duplicate,
          dedupeKey: result.dedupeKey,
        });
      },
      getStats: async (_request, { signal }) => {
        const [outboxStats, recordCounts] = await stepIn(signal, () =>
          Promise.all([outbox.stats(clock.now()), records.countByStatus()]),
        );
        return create(GetStatsResponseSchema, {
          outboxByStatus: Object.fromEntries(
            Object.entries(outboxStats.byStatus).map(([k, v]) => [k, BigInt(v)]),
          ),
          oldestPendingAge: durationFromMs(outboxStats.oldestPendingAgeMs),
          recordsByStatus: Object.fromEntries(Object.entries(recordCounts).map(([k, v]) => [k, BigInt(v)])),
        });
      },
    },
  };
}
