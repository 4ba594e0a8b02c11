import type { Kysely } from "kysely";
import type { DbTraits } from "../db/db-traits.ts";
import type { Database } from "../db/schema.ts";

/**
 * One kind of expired row: the rows of `table` in `status` (every row when it has none) whose `column` is at
 * or before a cut-off. `updated_at` is when a final row reached its final state; the RPC's idempotency keys
 * have only `created_at`.
 */
export interface ExpiryRule {
  readonly table: string;
  readonly status?: string;
  readonly column: "updated_at" | "created_at";
  /** The primary key, as the delete's id list names it. */
  readonly key: "id" | "event_id";
  /** How long such a row is kept; 0: forever (the rule is skipped). */
  readonly keepMs: number;
}

export interface RetentionStore {
  /**
   * Deletes up to `limit` rows of `rule` expired at `cutoff`: selects their keys (a plain read, which locks
   * nothing), then deletes by that list, with the rule's condition again, so a row that changed in between (a
   * dead record an operator sent back to `pending`) stays. Returns how many rows it deleted and whether more
   * may be left (the select filled the batch).
   */
  deleteExpired(rule: ExpiryRule, cutoff: Date, limit: number): Promise<{ deleted: number; more: boolean }>;
}

/**
 * The tables' real names are given (the outbox's comes from its route), so queries go through an untyped view
 * of the schema; the columns they name exist in every table a rule may name (schema.ts).
 */
type AnyTables = Record<string, { id: number; event_id: string; status: string } & Record<string, unknown>>;

export function createRetentionStore(db: Kysely<Database>, traits: DbTraits): RetentionStore {
  const any = db as unknown as Kysely<AnyTables>;
  return {
    async deleteExpired(rule, cutoff, limit) {
      const at = traits.time(cutoff);
      // One status per query: the (status, updated_at) index gives the rows in this order without a sort.
      const rows = await any
        .selectFrom(rule.table)
        .select(rule.key)
        .$if(rule.status !== undefined, (qb) => qb.where("status", "=", rule.status ?? ""))
        .where(rule.column, "<=", at)
        .orderBy(rule.column)
        .limit(limit)
        .execute();
      const keys = rows.map((row) => row[rule.key]);
      if (keys.length === 0) return { deleted: 0, more: false };
      const result = await any
        .deleteFrom(rule.table)
        .where(rule.key, "in", keys)
        .$if(rule.status !== undefined, (qb) => qb.where("status", "=", rule.status ?? ""))
        .where(rule.column, "<=", at)
        .executeTakeFirst();
      return { deleted: Number(result.numDeletedRows), more: keys.length >= limit };
    },
  };
}
