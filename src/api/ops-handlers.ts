import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import {
  type GetNotificationRecordRequest,
  GetNotificationRecordResponseSchema,
  GetStatsResponseSchema,
  type ListDeadOutboxMessagesRequest,
  ListDeadOutboxMessagesResponseSchema,
  type ListNotificationRecordsRequest,
  ListNotificationRecordsResponseSchema,
  NotificationOpsService,
  type ReplayOutboxMessagesRequest,
  ReplayOutboxMessagesResponseSchema,
  type RequestFeishuNotificationRequest,
  RequestFeishuNotificationResponseSchema,
  type RetryNotificationRecordRequest,
  RetryNotificationRecordResponseSchema,
} from "../gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import type { Clock } from "../lib/clock.ts";
import { AppError } from "../lib/errors.ts";
import type { DeliverySubmitter } from "../notifications/delivery-queue.ts";
import type { NotificationRequests } from "../notifications/notification-requests.ts";
import type { RecordQueries } from "../notifications/ports/record-store.ts";
import type { SecretReseal } from "../notifications/ports/secret-reseal.ts";
import type { OutboxOperations, ReplaySelector } from "../outbox/store/operations-store.ts";
import { throwIfAborted } from "./error-mapping.ts";
import {
  decodePageToken,
  encodePageToken,
  invalid,
  operatorReason,
  outboxMessage,
  pageSize,
  recordMessage,
  rowIdOf,
  statusFilter,
  userIdOf,
  validTimestamp,
} from "./ops-mapping.ts";
import { secretsHandlers } from "./ops-secrets-handlers.ts";
import type { ServiceBinding } from "./rpc-binding.ts";

/** Starts a step only while the call is still wanted (the transport answers the deadline itself). */
function stepIn<T>(signal: AbortSignal, step: () => Promise<T>): Promise<T> {
  throwIfAborted(signal);
  return step();
}

export interface OpsDeps {
  readonly records: RecordQueries;
  readonly outbox: OutboxOperations;
  readonly requests: NotificationRequests;
  readonly deliveries: DeliverySubmitter;
  /** Tells this process's relay that rows are due now (after a replay). */
  readonly wakeRelay: () => void;
  readonly clock: Clock;
  /** Seals the channels' secrets again with the current key (ResealSecrets). */
  readonly secrets: SecretReseal;
}

type Handlers = ServiceBinding["handlers"];

/** `smartflow.notification.v1.NotificationOpsService`: inspect and repair without SQL. */
export function opsBinding(deps: OpsDeps): ServiceBinding {
  return {
    service: NotificationOpsService,
    errorStyle: "v1",
    requiresToken: true,
    handlers: {
      ...recordHandlers(deps),
      ...outboxHandlers(deps),
      ...requestHandlers(deps),
      ...secretsHandlers(deps.secrets),
    },
  };
}

function recordHandlers({ records, deliveries, clock }: OpsDeps): Handlers {
  return {
    listNotificationRecords: async (request, { signal }) => {
      const r = request as ListNotificationRecordsRequest;
      const userId = userIdOf(r.userId, "user_id");
      const status = statusFilter(r.status);
      const size = pageSize(r.pageSize);
      const rows = await stepIn(signal, () =>
        records.listByUser(userId, status, size, decodePageToken(r.pageToken)),
      );
      return create(ListNotificationRecordsResponseSchema, {
        records: rows.map(recordMessage),
        nextPageToken: encodePageToken(rows.at(-1)?.id, rows.length === size),
      });
    },
    getNotificationRecord: async (request, { signal }) => {
      const wire = (request as GetNotificationRecordRequest).id;
      const id = rowIdOf(wire, "id");
      const row = id === undefined ? undefined : await stepIn(signal, () => records.get(id));
      if (!row) throw recordNotFound(wire);
      return create(GetNotificationRecordResponseSchema, { record: recordMessage(row) });
    },
    retryNotificationRecord: async (request, { signal }) => {
      const r = request as RetryNotificationRecordRequest;
      const id = rowIdOf(r.id, "id");
      if (id === undefined) throw recordNotFound(r.id);
      const reason = operatorReason("retried", clock.now(), r.reason);
      const retried = await stepIn(signal, () => records.retryNow(id, reason, clock.now()));
      const row = await stepIn(signal, () => records.get(id));
      if (!row) throw recordNotFound(r.id);
      if (!retried) {
        throw new AppError(
          "failed_precondition",
          `record ${id} is ${row.status}; only failed or dead records can be retried`,
        );
      }
      deliveries.submit([{ recordId: row.id, userId: row.userId }]);
      return create(RetryNotificationRecordResponseSchema, { record: recordMessage(row) });
    },
  };
}

const recordNotFound = (id: bigint) => new AppError("not_found", `notification record ${id} does not exist`);

function outboxHandlers({ outbox, records, wakeRelay, clock }: OpsDeps): Handlers {
  return {
    listDeadOutboxMessages: async (request, { signal }) => {
      const r = request as ListDeadOutboxMessagesRequest;
      const size = pageSize(r.pageSize);
      const rows = await stepIn(signal, () =>
        outbox.listDead(size, decodePageToken(r.pageToken), r.eventType.trim() || undefined),
      );
      return create(ListDeadOutboxMessagesResponseSchema, {
        messages: rows.map(outboxMessage),
        nextPageToken: encodePageToken(rows.at(-1)?.id, rows.length === size),
      });
    },
    replayOutboxMessages: async (request, { signal }) => {
      const r = request as ReplayOutboxMessagesRequest;
      const reason = operatorReason("replayed", clock.now(), r.reason);
      const selector = replaySelector(r);
      const replayed = await stepIn(signal, () => outbox.replayDead(selector, reason, clock.now()));
      if (replayed.length > 0) wakeRelay();
      return create(ReplayOutboxMessagesResponseSchema, {
        replayedCount: replayed.length,
        ids: replayed.map((id) => BigInt(id)),
      });
    },
    getStats: async (_request, { signal }) => {
      const [outboxStats, recordCounts] = await stepIn(signal, () =>
        Promise.all([outbox.stats(clock.now()), records.countByStatus()]),
      );
      const int64s = (counts: Readonly<Record<string, number>>) =>
        Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, BigInt(v)]));
      return create(GetStatsResponseSchema, {
        outboxByStatus: int64s(outboxStats.byStatus),
        oldestPendingAge: durationFromMs(outboxStats.oldestPendingAgeMs),
        recordsByStatus: int64s(recordCounts),
      });
    },
  };
}

function replaySelector(r: ReplayOutboxMessagesRequest): ReplaySelector {
  if (r.selector.case === "ids") {
    const ids = r.selector.value.ids;
    if (ids.length === 0 || ids.length > 1000) throw invalid("ids.ids", "must name 1 to 1000 messages");
    // An id past 2^53 names no row: it is left out, and replays nothing.
    return { ids: ids.map((id) => rowIdOf(id, "ids.ids")).filter((id) => id !== undefined) };
  }
  if (r.selector.case === "filter") {
    const f = r.selector.value;
    if (f.limit < 0 || f.limit > 10_000) throw invalid("filter.limit", "must be between 0 and 10000");
    return { eventType: f.eventType.trim(), errorContains: f.errorContains, limit: f.limit || 1_000 };
  }
  throw invalid("selector", "set ids or filter");
}

function requestHandlers({ requests, clock }: OpsDeps): Handlers {
  return {
    requestFeishuNotification: async (request, { signal }) => {
      const r = request as RequestFeishuNotificationRequest;
      const userId = userIdOf(r.userId, "user_id");
      const requestedAt = r.requestedTime ? validTimestamp(r.requestedTime, "requested_time") : clock.now();
      const result = await stepIn(signal, () =>
        requests.request({
          eventId: r.eventId,
          userId,
          triggerId: r.triggerId,
          previewId: r.previewId,
          triggerType: r.triggerType,
          targetType: r.targetType,
          targetId: r.targetId,
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
  };
}
