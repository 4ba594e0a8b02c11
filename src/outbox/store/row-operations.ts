import type { Transaction } from "kysely";
import type { Database } from "../../db/schema.ts";
import { OutboxStatus } from "../outbox-status.ts";
import { consumedValues, markDeadIn, type OutboxTable } from "./outbox-table.ts";

/** SmartFlow's row operations, for code that handles an outbox row by hand. */
export interface RowOperations {
  /** `markDead(ids, reason)`: guarded so that a consumed or dead row is never touched. */
  markDead(ids: readonly number[], reason: string, now: Date): Promise<number>;
  /**
   * `consumeAndMarkConsumed(id, fn?)`, with the original's guards: locks the row, does nothing when it is
   * missing, consumed or dead, otherwise runs `fn` inside the transaction and marks the row consumed.
   * Returns whether the row was consumed by this call.
   */
  consumeAndMarkConsumed(
    id: number,
    now: Date,
    fn?: (trx: Transaction<Database>) => Promise<void>,
  ): Promise<boolean>;
}

export function createRowOperations(table: OutboxTable): RowOperations {
  const { db, traits } = table;
  return {
    markDead: (ids, reason, now) => markDeadIn(table, db, ids, reason, now),

    consumeAndMarkConsumed: (id, now, fn) =>
      db.transaction().execute(async (trx) => {
        const row = await trx
          .selectFrom(table.name)
          .select(["status"])
          .where("id", "=", id)
          .$if(traits.skipLocked, (qb) => qb.forUpdate())
          .executeTakeFirst();
        if (!row || row.status === OutboxStatus.consumed || row.status === OutboxStatus.dead) return false;
        if (fn) await fn(trx);
        await trx.updateTable(table.name).set(consumedValues(table, now)).where("id", "=", id).execute();
        return true;
      }),
  };
}
