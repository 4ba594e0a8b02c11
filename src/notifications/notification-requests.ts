import { AppError } from "../lib/errors.ts";
import { stringifyJson } from "../lib/json-int64.ts";
import { activeTraceFields } from "../lib/trace-context.ts";
import { buildFeishuDedupeKey } from "./dedupe-key.ts";
import {
  FEISHU_REQUESTED_EVENT,
  type FeishuRequestedPayload,
  parseFeishuRequestedPayload,
} from "./feishu-requested-payload.ts";
import type { OutboxId } from "./ids.ts";
import type { InRequestTransaction, RequestKey, RequestKeys } from "./ports/event-outbox.ts";

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

/**
 * A `notification.feishu.requested` event for producers that do not share the database: validated with the
 * consumer's own rules, written into the outbox in one transaction with its idempotency key, so a second
 * request with the same `event_id` returns the first one's outbox row and sends nothing more.
 */
export function createNotificationRequests(deps: {
  /** Keys as committed (outside any transaction). */
  readonly keys: RequestKeys;
  readonly inTransaction: InRequestTransaction;
  readonly now: () => Date;
}): NotificationRequests {
  const duplicateOf = (key: RequestKey): RequestReceipt => ({
    outboxId: key.outboxId,
    duplicate: true,
    dedupeKey: key.dedupeKey,
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
      const payload = toPayload(input, dedupeKey);
      const existing = await deps.keys.find(eventId);
      if (existing) return duplicateOf(existing);
      try {
        const outboxId = await deps.inTransaction(async ({ enqueue, keys }) => {
          const id = await enqueue({
            eventType: FEISHU_REQUESTED_EVENT,
            eventId,
            eventVersion: "1",
            aggregateId: input.previewId,
            messageKey: String(input.userId),
            payload,
          });
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
