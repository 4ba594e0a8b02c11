import type { Kysely, Transaction } from "kysely";
import type { DbTraits } from "../../db/db-traits.ts";
import type { Database } from "../../db/schema.ts";
import type { RequestKey, RequestKeys } from "../ports/event-outbox.ts";

/**
 * `notification_request_keys` (additive): `event_id` → the outbox row it produced. Inside a transaction (`db`
 * a Kysely transaction) the key commits with the event; the primary key lets one of two racing requests win.
 */
export function createSqlRequestKeys(
  db: Kysely<Database> | Transaction<Database>,
  traits: DbTraits,
): RequestKeys {
  return {
    async find(eventId) {
      const row = await db
        .selectFrom("notification_request_keys")
        .select(["outbox_id", "dedupe_key"])
        .where("event_id", "=", eventId)
        .executeTakeFirst();
      return row ? { eventId, outboxId: row.outbox_id, dedupeKey: row.dedupe_key } : undefined;
    },
    async add(key, now) {
      await db
        .insertInto("notification_request_keys")
        .values({
          event_id: key.eventId,
          outbox_id: key.outboxId,
          dedupe_key: key.dedupeKey,
          created_at: traits.time(now),
        })
        .execute();
    },
    async findMany(eventIds) {
      const found = new Map<string, RequestKey>();
      if (eventIds.length === 0) return found;
      const rows = await db
        .selectFrom("notification_request_keys")
        .select(["event_id", "outbox_id", "dedupe_key"])
        .where("event_id", "in", eventIds)
        .execute();
      for (const row of rows) {
        found.set(row.event_id, {
          eventId: row.event_id,
          outboxId: row.outbox_id,
          dedupeKey: row.dedupe_key,
        });
      }
      return found;
    },
    async addMany(keys, now) {
      if (keys.length === 0) return;
      const createdAt = traits.time(now);
      await db
        .insertInto("notification_request_keys")
        .values(
          keys.map((key) => ({
            event_id: key.eventId,
            outbox_id: key.outboxId,
            dedupe_key: key.dedupeKey,
            created_at: createdAt,
          })),
        )
        .execute();
    },
  };
}
