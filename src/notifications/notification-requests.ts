import { createCoalescingWriter } from "../lib/coalescing-writer.ts";
import { AppError } from "../lib/errors.ts";
import { stringifyJson } from "../lib/json-int64.ts";
import { activeTraceFields, carrierOf, type TraceCarrier } from "../lib/trace-context.ts";
import { buildFeishuDedupeKey } from "./dedupe-key.ts";
import {
  FEISHU_REQUESTED_EVENT,
  type FeishuRequestedPayload,
  parseFeishuRequestedPayload,
} from "./feishu-requested-payload.ts";
import type { OutboxId } from "./ids.ts";
import { duplicateOf, type PreparedRequest, writeBatch } from "./notification-request-batch.ts";
import type { InRequestTransaction, NewEvent, RequestKeys } from "./ports/event-outbox.ts";

/** The payload's fields (its `notification_id` aside), an idempotency key, and the dedupe key optional. */
export type NotificationRequest = Omit<FeishuRequestedPayload, "notificationId"> & {
  readonly eventId: string;
};

export interface RequestReceipt {
  readonly outboxId: OutboxId;
  readonly duplicate: boolean;
  readonly dedupeKey: string;
}

export interface NotificationRequests {
  request(input: NotificationRequest): Promise<RequestReceipt>;
}

/** How concurrent requests share transactions (see `createCoalescingWriter`). */
export interface RequestBatching {
  readonly maxBatch: number;
  readonly maxWaitMs: number;
  readonly maxInFlight: number;
}

/**
 * A `notification.feishu.requested` event for producers that do not share the database: validated with the
 * consumer's own rules, written into the outbox in one transaction with its idempotency key, so a second
 * request with the same `event_id` returns the first one's outbox row and sends nothing more.
 *
 * Concurrent requests are coalesced: one transaction writes a batch of them (notification-request-batch.ts),
 * each caller getting the answer it would get alone. Requests with one `event_id` never share a batch nor
 * run in two at once: the later one waits and reads the earlier one's key, as if they had come in turn.
 */
export function createNotificationRequests(deps: {
  /** Keys as committed (outside any transaction). */
  readonly keys: RequestKeys;
  readonly inTransaction: InRequestTransaction;
  readonly now: () => Date;
  readonly batching?: RequestBatching;
}): NotificationRequests {
  const writeOne = async (request: PreparedRequest): Promise<RequestReceipt> => {
    const { eventId, dedupeKey } = request;
    const existing = await deps.keys.find(eventId);
    if (existing) return duplicateOf(existing);
    try {
      const outboxId = await deps.inTransaction(async ({ enqueue, keys }) => {
        const id = await enqueue(request.event);
        await keys.add({ eventId, outboxId: id, dedupeKey }, deps.now());
        return id;
      });
      return { outboxId, duplicate: false, dedupeKey };
    } catch (error) {
      // Two requests with one event_id at once: the key's uniqueness lets one commit; the other reads it.
      const winner = await deps.keys.find(eventId);
      if (winner) return duplicateOf(winner);
      throw error;
    }
  };
  const writer = createCoalescingWriter<PreparedRequest, RequestReceipt>({
    write: (batch) => writeBatch(batch, { inTransaction: deps.inTransaction, now: deps.now, writeOne }),
    keyOf: (request) => request.eventId,
    ...(deps.batching ?? { maxBatch: 1, maxWaitMs: 0, maxInFlight: 1 }),
  });
  return {
    async request(input) {
      const eventId = validEventId(input.eventId);
      const dedupeKey =
        input.dedupeKey.trim() ||
        buildFeishuDedupeKey(
          input.userId,
          input.triggerType,
          input.requestedAt,
          -input.requestedAt.getTimezoneOffset(),
        );
      const event: NewEvent = {
        eventType: FEISHU_REQUESTED_EVENT,
        eventId,
        eventVersion: "1",
        aggregateId: input.previewId,
        messageKey: String(input.userId),
        payload: toPayload(input, dedupeKey),
        // Taken now: the batch that writes it runs in whichever caller's context started it.
        ...withTrace(carrierOf()),
      };
      return writer.submit({ eventId, dedupeKey, event });
    },
  };
}

function validEventId(raw: string): string {
  const eventId = raw.trim();
  if (!eventId) throw new AppError("invalid_argument", "event_id is required", { field: "event_id" });
  if (eventId.length > 128) {
    throw new AppError("invalid_argument", "event_id must be at most 128 characters", { field: "event_id" });
  }
  return eventId;
}

/**
 * SmartFlow's JSON payload, checked with the consumer's own rules: nothing dead on arrival is written. Without
 * a caller's `trace_id`, it is the request's W3C trace id (when tracing is on), so the record names its trace
 * and a later retry of its send continues it.
 */
function toPayload(input: NotificationRequest, dedupeKey: string) {
  const traceId = input.traceId || activeTraceFields()?.trace_id;
  const payload = {
    user_id: input.userId,
    trigger_id: input.triggerId,
    preview_id: input.previewId,
    trigger_type: input.triggerType,
    target_type: input.targetType,
    target_id: input.targetId,
    dedupe_key: dedupeKey,
    target_url: input.targetUrl,
    ...(input.summaryText ? { summary_text: input.summaryText } : {}),
    ...(input.fallbackText ? { fallback_text: input.fallbackText } : {}),
    ...(traceId ? { trace_id: traceId } : {}),
    requested_at: input.requestedAt.toISOString(),
  };
  try {
    parseFeishuRequestedPayload(stringifyJson(payload));
  } catch (error) {
    if (AppError.is(error)) {
      throw new AppError("invalid_argument", error.message, {
        ...(error.field ? { field: error.field } : {}),
      });
    }
    throw error;
  }
  return payload;
}

const withTrace = (trace: TraceCarrier | undefined) => (trace ? { trace } : {});
