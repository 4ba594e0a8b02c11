import type { Kysely, Transaction } from "kysely";
import type { DbTraits } from "../../db/db-traits.ts";
import type { Database } from "../../db/schema.ts";
import type { RequestKeys } from "../ports/event-outbox.ts";

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
  };
}
