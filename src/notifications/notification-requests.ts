import type { Kysely } from "kysely";
import type { DbTraits } from "../db/db-traits.ts";
import type { Database } from "../db/schema.ts";
import { AppError } from "../lib/errors.ts";
import type { Enqueuer } from "../outbox/enqueue.ts";
import { FEISHU_REQUESTED_EVENT } from "../outbox/routes.ts";
import { buildFeishuDedupeKey } from "./dedupe-key.ts";
import { type FeishuRequestedPayload, parseFeishuRequestedPayload } from "./feishu-requested-payload.ts";

/** The payload's fields (its `notification_id` aside), an idempotency key, and the dedupe key optional. */
export type NotificationRequest = Omit<FeishuRequestedPayload, "notificationId"> & {
  readonly eventId: string;
};

/**
 * A `notification.feishu.requested` event for producers that do not share the database: validated with the
 * consumer's own rules, written into the outbox in one transaction with its idempotency key, so a second
 * request with the same `event_id` returns the first one's outbox row and sends nothing more.
 */
export function createNotificationRequests(deps: {
  readonly db: Kysely<Database>;
  readonly traits: DbTraits;
  readonly enqueuer: Enqueuer;
  readonly now: () => Date;
}) {
  const { db, traits, enqueuer } = deps;
  return {
    async request(
      input: NotificationRequest,
    ): Promise<{ outboxId: number; duplicate: boolean; dedupeKey: string }> {
      const eventId = input.eventId.trim();
      if (!eventId) throw new AppError("invalid_argument", "event_id is required", { field: "event_id" });
      if (eventId.length > 128) {
        throw new AppError("invalid_argument", "event_id must be at most 128 characters", {
          field: "event_id",
        });
      }
      const dedupeKey =
        input.dedupeKey.trim() ||
        buildFeishuDedupeKey(
          input.userId,
          input.triggerType,
          input.requestedAt,
          -input.requestedAt.getTimezoneOffset(),
        );
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
        ...(input.traceId ? { trace_id: input.traceId } : {}),
        requested_at: input.requestedAt.toISOString(),
      };
      // The same rules the consumer applies: nothing that would be dead on arrival is written.
      try {
        parseFeishuRequestedPayload(JSON.stringify(payload));
      } catch (error) {
        if (AppError.is(error)) {
          throw new AppError("invalid_argument", error.message, {
            ...(error.field ? { field: error.field } : {}),
          });
        }
        throw error;
      }
      const existing = await db
        .selectFrom("notification_request_keys")
        .select(["outbox_id", "dedupe_key"])
        .where("event_id", "=", eventId)
        .executeTakeFirst();
      if (existing)
        return { outboxId: Number(existing.outbox_id), duplicate: true, dedupeKey: existing.dedupe_key };
      try {
        const outboxId = await db.transaction().execute(async (trx) => {
          const id = await enqueuer.enqueue(trx, {
            eventType: FEISHU_REQUESTED_EVENT,
            eventId,
            eventVersion: "1",
            aggregateId: input.previewId,
            messageKey: String(input.userId),
            payload,
          });
          await trx
            .insertInto("notification_request_keys")
            .values({
              event_id: eventId,
              outbox_id: id,
              dedupe_key: dedupeKey,
              created_at: traits.time(deps.now()),
            })
            .execute();
          return id;
        });
        return { outboxId, duplicate: false, dedupeKey };
      } catch (error) {
        // Two requests with one event_id at once: the primary key lets one commit; the other reads it.
        const winner = await db
          .selectFrom("notification_request_keys")
          .select(["outbox_id", "dedupe_key"])
          .where("event_id", "=", eventId)
          .executeTakeFirst();
        if (winner)
          return { outboxId: Number(winner.outbox_id), duplicate: true, dedupeKey: winner.dedupe_key };
        throw error;
      }
    },
  };
}

export type NotificationRequests = ReturnType<typeof createNotificationRequests>;
