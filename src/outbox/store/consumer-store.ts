import { OutboxStatus } from "../outbox-status.ts";
import {
  consumedValues,
  type Executor,
  errorText,
  failRows,
  groupBy,
  markDeadIn,
  type OutboxTable,
  type RowState,
} from "./outbox-table.ts";

/** A claimed row as the consumer loads it: its state and its attempt counters. */
export interface ConsumerRowState extends RowState {
  /** How often handling it began (committed before each handling). */
  readonly startedAttempts: number;
  /** How often handling it ended with a stored outcome. */
  readonly finishedAttempts: number;
}

/** What the consumer decided for each message of a batch; applied in one transaction. */
export interface Outcomes {
  /** Rows whose handling ended in this batch (any outcome): their `finished_attempts` goes up by one. */
  readonly finished: readonly number[];
  readonly consumed: readonly number[];
  readonly dead: readonly { readonly id: number; readonly reason: string }[];
  readonly retry: readonly { readonly row: RowState; readonly reason: string }[];
  readonly deferred: readonly { readonly id: number; readonly until: Date; readonly reason: string }[];
}

export interface AppliedOutcomes {
  readonly consumed: number;
  readonly dead: number;
  readonly retried: number;
  readonly exhausted: number;
  readonly deferred: number;
}

/** The consumer's statements. */
export interface ConsumerStore {
  /** The current state of the rows that messages name (missing ids are absent from the map). */
  loadStates(ids: readonly number[]): Promise<Map<number, ConsumerRowState>>;
  /**
   * Counts one more started handling of each of these claimed rows, committed before any handler runs: if
   * the process dies while handling them, the gap between started and finished attempts says so.
   */
  markStarted(ids: readonly number[]): Promise<void>;
  /**
   * Applies a batch's outcomes in one transaction (one commit, one fsync), each update guarded on the row
   * still being claimed: only rows this delivery was for are changed.
   */
  applyOutcomes(outcomes: Outcomes, now: Date): Promise<AppliedOutcomes>;
}

export function createConsumerStore(table: OutboxTable): ConsumerStore {
  const { db, traits } = table;
  return {
    async loadStates(ids) {
      const states = new Map<number, ConsumerRowState>();
      if (ids.length === 0) return states;
      const rows = await db
        .selectFrom(table.name)
        .select(["id", "status", "retry_count", "max_retry", "started_attempts", "finished_attempts"])
        .where("id", "in", ids)
        .execute();
      for (const row of rows) {
        states.set(row.id, {
          id: row.id,
          status: row.status,
          retryCount: row.retry_count,
          maxRetry: row.max_retry,
          startedAttempts: Number(row.started_attempts),
          finishedAttempts: Number(row.finished_attempts),
        });
      }
      return states;
    },

    async markStarted(ids) {
      if (ids.length === 0) return;
      await db
        .updateTable(table.name)
        .set((eb) => ({ started_attempts: eb("started_attempts", "+", 1) }))
        .where("id", "in", ids)
        .where("status", "=", OutboxStatus.claimed)
        .execute();
    },

    applyOutcomes: (outcomes, now) =>
      db.transaction().execute(async (trx) => {
        await countFinished(table, trx, outcomes.finished);
        let consumed = 0;
        if (outcomes.consumed.length > 0) {
          const result = await trx
            .updateTable(table.name)
            .set(consumedValues(table, now))
            .where("id", "in", outcomes.consumed)
            .where("status", "=", OutboxStatus.claimed)
            .executeTakeFirst();
          consumed = Number(result.numUpdatedRows);
        }
        let dead = 0;
        for (const [reason, ids] of groupBy(
          outcomes.dead,
          (d) => d.reason,
          (d) => d.id,
        )) {
          dead += await markDeadIn(table, trx, ids, reason, now);
        }
        const { retried, exhausted } = await failRows(table, trx, outcomes.retry, OutboxStatus.claimed, now);
        let deferred = 0;
        for (const item of outcomes.deferred) {
          const result = await trx
            .updateTable(table.name)
            .set({
              status: OutboxStatus.pending,
              next_retry_at: traits.time(item.until),
              last_error: errorText(item.reason),
              updated_at: traits.time(now),
            })
            .where("id", "=", item.id)
            .where("status", "=", OutboxStatus.claimed)
            .executeTakeFirst();
          deferred += Number(result.numUpdatedRows);
        }
        return { consumed, dead, retried, exhausted, deferred };
      }),
  };
}

/** One more finished handling of each row; not guarded on the status: the handling ended, whatever the row became. */
async function countFinished(table: OutboxTable, trx: Executor, ids: readonly number[]) {
  if (ids.length === 0) return;
  await trx
    .updateTable(table.name)
    .set((eb) => ({ finished_attempts: eb("finished_attempts", "+", 1) }))
    .where("id", "in", ids)
    .execute();
}
