import { formatDuration } from "../../lib/text.ts";
import { OutboxStatus } from "../outbox-status.ts";
import { type Executor, errorText, failRows, type OutboxTable } from "./outbox-table.ts";

export interface SweepResult {
  readonly retried: number;
  readonly exhausted: number;
  /** Too old to re-queue: marked dead with their age. */
  readonly expired: number;
}

/** The sweeper's statement. */
export interface SweeperStore {
  /**
   * Re-queues up to `limit` claimed rows never consumed (weakness 3): rows the broker acknowledged at or before
   * `before` (the message was lost, or a consumer crashed on it), and rows claimed at or before
   * `unackedBefore` that the broker never acknowledged (the relay died between its claim and the broker's
   * answer). Each re-queue counts as a failed
   * attempt, so a message that kills its consumer every time still ends `dead` after `max_retry`. A row
   * created at or before `createdBefore` is `dead` instead, with its age in `last_error`: SmartFlow's Go
   * service never re-queued such rows, and a notification from last week must not go out today.
   */
  requeueStaleClaims(
    before: Date,
    unackedBefore: Date,
    now: Date,
    limit: number,
    createdBefore: Date,
  ): Promise<SweepResult>;
}

export function createSweeperStore(table: OutboxTable): SweeperStore {
  const { db, traits } = table;
  return {
    requeueStaleClaims: (before, unackedBefore, now, limit, createdBefore) =>
      db.transaction().execute(async (trx) => {
        const rows = await trx
          .selectFrom(table.name)
          .select(["id", "status", "retry_count", "max_retry", "created_at"])
          .where("status", "=", OutboxStatus.claimed)
          .where((eb) =>
            eb.or([
              eb("published_at", "<=", traits.time(before)),
              eb.and([eb("published_at", "is", null), eb("updated_at", "<=", traits.time(unackedBefore))]),
            ]),
          )
          .orderBy("id")
          .limit(limit)
          .$if(traits.skipLocked, (qb) => qb.forUpdate().skipLocked())
          .execute();
        const old = rows.flatMap((row) => {
          const created = traits.readTime(row.created_at);
          return created && created.getTime() <= createdBefore.getTime() ? [{ id: row.id, created }] : [];
        });
        const expired = await expire(table, trx, old, now, now.getTime() - createdBefore.getTime());
        const oldIds = new Set(old.map((row) => row.id));
        const reason = `re-queued: claimed and not acknowledged by ${unackedBefore.toISOString()}, or published at or before ${before.toISOString()}, and never consumed`;
        const requeued = await failRows(
          table,
          trx,
          rows
            .filter((row) => !oldIds.has(row.id))
            .map((row) => ({
              row: { id: row.id, status: row.status, retryCount: row.retry_count, maxRetry: row.max_retry },
              reason,
            })),
          OutboxStatus.claimed,
          now,
        );
        return { ...requeued, expired };
      }),
  };
}

/** Marks each row dead with its own age (rows are few: the sweep's batch at most). */
async function expire(
  table: OutboxTable,
  trx: Executor,
  rows: readonly { readonly id: number; readonly created: Date }[],
  now: Date,
  maxAgeMs: number,
): Promise<number> {
  let expired = 0;
  for (const { id, created } of rows) {
    const age = formatDuration(now.getTime() - created.getTime());
    const reason = `not re-queued: created ${age} ago (${created.toISOString()}), past OUTBOX_CLAIMED_MAX_AGE_MS (${formatDuration(maxAgeMs)}); published and never consumed`;
    const result = await trx
      .updateTable(table.name)
      .set({
        status: OutboxStatus.dead,
        next_retry_at: null,
        last_error: errorText(reason),
        updated_at: table.traits.time(now),
      })
      .where("id", "=", id)
      .where("status", "=", OutboxStatus.claimed)
      .executeTakeFirst();
    expired += Number(result.numUpdatedRows);
  }
  return expired;
}
