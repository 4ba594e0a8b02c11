import { RecordStatus } from "../db/schema.ts";
import type { Clock } from "../lib/clock.ts";
import type { EventHub } from "../lib/event-hub.ts";
import type { Logger } from "../lib/logger.ts";
import type { OutboxEvent, OutboxHandler } from "../outbox/outbox-consumer.ts";
import { FEISHU_REQUESTED_EVENT } from "../outbox/routes.ts";
import type { DeliveryDispatcher, DeliveryJob } from "./delivery-dispatcher.ts";
import type { DeliveryEvents } from "./delivery-events.ts";
import { FEISHU_REQUESTED_VERSIONS, parseFeishuRequestedPayload } from "./feishu-requested-payload.ts";
import { normalizeTexts } from "./message-composer.ts";
import type { IntakeItem, RecordRow, RecordStore } from "./record-store.ts";

/**
 * SmartFlow's `RegisterFeishuRequestedHandler`, done right. For a batch of events it validates each payload
 * (a bad one is `dead`, naming the field), finds or creates each record by dedupe key in one round of
 * grouped writes, and queues the records that need a send. The outbox row is consumed once its record is
 * stored: the send itself runs outside the Kafka loop (weakness 5), and a crash before it is recovered by the
 * retry loop (stranded `pending`, expired lease). A record another instance is sending, or a finished one,
 * is not sent again: the event is consumed without spending its outbox retries (weakness 8), which is how
 * the dedupe key suppresses a second notification.
 */
export function createFeishuRequestedHandler(deps: {
  readonly records: RecordStore;
  readonly dispatcher: DeliveryDispatcher;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly events: EventHub<DeliveryEvents>;
}): OutboxHandler {
  const { records, dispatcher, clock, logger, events } = deps;

  const needsSend = (record: RecordRow, now: Date) =>
    record.status === RecordStatus.pending ||
    (record.status === RecordStatus.failed && (record.nextRetryAt?.getTime() ?? 0) <= now.getTime()) ||
    (record.status === RecordStatus.sending && (record.leaseUntil?.getTime() ?? 0) <= now.getTime());

  async function handleBatch(batch: readonly OutboxEvent[]): Promise<unknown[]> {
    const errors = new Array<unknown>(batch.length);
    const items: (IntakeItem & { index: number })[] = [];
    batch.forEach((event, index) => {
      try {
        const payload = parseFeishuRequestedPayload(event.payload);
        items.push({ index, payload, texts: normalizeTexts(payload.summaryText, payload.fallbackText) });
      } catch (error) {
        errors[index] = error;
      }
    });
    const now = clock.now();
    const stored = await records.intake(items, now);
    const jobs: DeliveryJob[] = [];
    stored.forEach(({ record, reused }, i) => {
      const event = batch[(items[i] as (typeof items)[number]).index] as OutboxEvent;
      const queued = needsSend(record, now);
      if (queued) jobs.push({ recordId: record.id, userId: record.userId, outboxId: event.outboxId, reused });
      else {
        logger.info("notification event consumed without a send", {
          outbox_id: event.outboxId,
          notification_id: record.id,
          status: record.status,
          delivered: false,
          reused,
          attempt_count: record.attemptCount,
        });
      }
      events.emit("intake:record", {
        outboxId: event.outboxId,
        recordId: record.id,
        status: record.status,
        reused,
        queued,
      });
    });
    dispatcher.submit(jobs);
    return errors;
  }

  return {
    eventType: FEISHU_REQUESTED_EVENT,
    versions: FEISHU_REQUESTED_VERSIONS,
    async handle(event) {
      const [error] = await handleBatch([event]);
      if (error !== undefined) throw error;
    },
    handleBatch,
  };
}
