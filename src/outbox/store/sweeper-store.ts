import { OutboxStatus } from "../outbox-status.ts";
import { failRows, type OutboxTable } from "./outbox-table.ts";

/** The sweeper's statement. */
export interface SweeperStore {
  /**
   * Re-queues up to `limit` rows claimed at or before `before` and never consumed (weakness 3): the relay died
   * after claiming, the message was lost, or a consumer crashed on it. Each re-queue counts as a failed
   * attempt, so a message that kills its consumer every time still ends `dead` after `max_retry`.
   */
  requeueStaleClaims(before: Date, now: Date, limit: number): Promise<{ retried: number; exhausted: number }>;
}

export function createSweeperStore(table: OutboxTable): SweeperStore {
  const { db, traits } = table;
  return {
    requeueStaleClaims: (before, now, limit) =>
      db.transaction().execute(async (trx) => {
        const rows = await trx
          .selectFrom(table.name)
          .select(["id", "status", "retry_count", "max_retry"])
          .where("status", "=", OutboxStatus.claimed)
          .where("published_at", "<=", traits.time(before))
          .orderBy("id")
          .limit(limit)
          .$if(traits.skipLocked, (qb) => qb.forUpdate().skipLocked())
          .execute();
        const reason = `re-queued: published at or before ${before.toISOString()} and never consumed`;
        return failRows(
          table,
          trx,
          rows.map((row) => ({
            row: { id: row.id, status: row.status, retryCount: row.retry_count, maxRetry: row.max_retry },
            reason,
          })),
          OutboxStatus.claimed,
          now,
        );
      }),
  };
}
