import type { Clock } from "../lib/clock.ts";
import { AppError } from "../lib/errors.ts";
import type { EventHub } from "../lib/event-hub.ts";
import type { Logger } from "../lib/logger.ts";
import { contextOfCarrier, type TraceCarrier, withContext } from "../lib/trace-context.ts";
import type { DeliveryEvents } from "./delivery-events.ts";
import type { DeliveryJob, DeliverySubmitter } from "./delivery-queue.ts";
import { GO_DEAD_PREFIX, parseFeishuRequestedPayload } from "./feishu-requested-payload.ts";
import type { OutboxId } from "./ids.ts";
import { normalizeTexts } from "./message-composer.ts";
import type { RecordIntake } from "./ports/record-store.ts";
import type { IntakeItem } from "./record.ts";
import { needsSend } from "./record-state.ts";

/** A `notification.feishu.requested` event: the outbox row it came from and its JSON payload. */
export interface RequestedEvent {
  readonly outboxId: OutboxId;
  readonly payload: string;
  /** The trace its handling continues (the outbox consumer's span), carried on to its send. */
  readonly trace?: TraceCarrier;
}

export interface FeishuRequestedHandler {
  /**
   * Takes a batch of events in. Returns, per event and in order, `undefined` when it is done (its record is
   * stored and, if it needs one, its send queued) or the error it failed with: a `poison` `AppError` naming
   * the field for a payload that cannot be valid. Rejects when the records cannot be stored (retry them all).
   */
  handle(events: readonly RequestedEvent[]): Promise<readonly unknown[]>;
}

/**
 * SmartFlow's `RegisterFeishuRequestedHandler`, done right. For a batch of events it validates each payload,
 * finds or creates each record by dedupe key in one round of grouped writes, and queues the records that need
 * a send. The event is done once its record is stored: the send runs outside the consumer (weakness 5), and a
 * crash before it is recovered by the retry loop (stranded `pending`, expired lease). A record another
 * instance is sending, or a finished one, is not sent again: the event is done without a send (weakness 8),
 * which is how the dedupe key suppresses a second notification.
 */
export function createFeishuRequestedHandler(deps: {
  readonly records: RecordIntake;
  readonly deliveries: DeliverySubmitter;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly events: EventHub<DeliveryEvents>;
  /** DELIVERY_SENDING_LEASE_MS: whether a record Go left in `sending` is still being sent (`needsSend`). */
  readonly leaseMs: number;
}): FeishuRequestedHandler {
  const { records, deliveries, clock, logger, events, leaseMs } = deps;
  return {
    async handle(batch) {
      const errors = new Array<unknown>(batch.length);
      const items: (IntakeItem & { event: RequestedEvent })[] = [];
      batch.forEach((event, index) => {
        try {
          const payload = parseFeishuRequestedPayload(event.payload);
          items.push({ event, payload, texts: normalizeTexts(payload.summaryText, payload.fallbackText) });
        } catch (error) {
          errors[index] = withGoPrefix(error);
        }
      });
      const now = clock.now();
      const stored = await records.intake(items, now);
      const jobs: DeliveryJob[] = [];
      stored.forEach(({ record, reused }, i) => {
        const { outboxId, trace } = (items[i] as (typeof items)[number]).event;
        const queued = needsSend(record, now, leaseMs);
        if (queued) {
          jobs.push({
            recordId: record.id,
            userId: record.userId,
            outboxId,
            reused,
            ...(trace ? { trace } : {}),
          });
        } else {
          withContext(contextOfCarrier(trace), () =>
            logger.info("notification event consumed without a send", {
              outbox_id: outboxId,
              notification_id: record.id,
              status: record.status,
              delivered: false,
              reused,
              attempt_count: record.attemptCount,
            }),
          );
        }
        events.emit("intake:record", {
          outboxId,
          recordId: record.id,
          status: record.status,
          reused,
          queued,
        });
      });
      deliveries.submit(jobs);
      return errors;
    },
  };
}

/**
 * A refused payload's error, its message starting as SmartFlow's Go handler's `last_error` did
 * (`notification.feishu.requested 载荷非法: …`): the consumer writes it on the dead outbox row.
 */
function withGoPrefix(error: unknown): unknown {
  if (!AppError.is(error, "poison")) return error;
  const prefix = GO_DEAD_PREFIX[error.reason as keyof typeof GO_DEAD_PREFIX];
  if (!prefix) return error;
  return new AppError("poison", `${prefix}: ${error.message}`, {
    ...(error.field ? { field: error.field } : {}),
    ...(error.reason ? { reason: error.reason } : {}),
  });
}
