import type { Kysely, Transaction } from "kysely";
import type { DbTraits } from "../../db/db-traits.ts";
import type { Database, OutboxTableName } from "../../db/schema.ts";
import { truncateCodePoints } from "../../lib/text.ts";
import { OutboxStatus } from "../outbox-status.ts";

/**
 * What every outbox statement needs: the connection, the dialect's traits, the route's table and the retry
 * schedule. The stores next to this file hold the statements, one file per caller (relay, consumer, row
 * operations, operations API, sweeper). State changes are conditional updates (`WHERE status = …`), so a
 * stale decision — a redelivered message, a row the sweeper re-queued, another relay — changes nothing.
 */
export interface OutboxTable {
  readonly db: Kysely<Database>;
  readonly traits: DbTraits;
  /** The route's table (it may be overridden); typed as the one outbox table the schema knows. */
  readonly name: OutboxTableName;
  /** Delay before the next publish after `failures` failed ones (see lib/backoff.ts `squareBackoffMs`). */
  readonly retryDelayMs: (failures: number) => number;
}

export function outboxTable(
  db: Kysely<Database>,
  traits: DbTraits,
  table: string,
  retryDelayMs: (failures: number) => number,
): OutboxTable {
  return { db, traits, name: table as OutboxTableName, retryDelayMs };
}

export type Executor = Kysely<Database> | Transaction<Database>;

/** `last_error` keeps at most this many code points (never a split character: weakness 14). */
export const LAST_ERROR_MAX_CODE_POINTS = 2000;
/** SmartFlow's default `max_retry`, also used for rows that carry none. */
export const DEFAULT_MAX_RETRY = 20;

/** The part of a row that decides what happens to it next. */
export interface RowState {
  readonly id: number;
  readonly status: string;
  readonly retryCount: number;
  readonly maxRetry: number;
}

export const errorText = (reason: string) => truncateCodePoints(reason, LAST_ERROR_MAX_CODE_POINTS);

export const consumedValues = (table: OutboxTable, now: Date) => ({
  status: OutboxStatus.consumed,
  consumed_at: table.traits.time(now),
  last_error: null,
  next_retry_at: null,
  updated_at: table.traits.time(now),
});

const maxRetryOf = (row: { maxRetry: number }) => (row.maxRetry > 0 ? row.maxRetry : DEFAULT_MAX_RETRY);

/** One more failed attempt for each row: back to pending with a backoff, or dead when its budget is spent. */
export async function failRows(
  table: OutboxTable,
  trx: Executor,
  rows: readonly { readonly row: RowState; readonly reason: string }[],
  from: OutboxStatus,
  now: Date,
): Promise<{ retried: number; exhausted: number }> {
  const t = table.traits.time;
  let retried = 0;
  let exhausted = 0;
  // Rows that share a retry count, a fate and a reason share one UPDATE; `retry_count = n` in the WHERE
  // makes it a compare-and-set, so two writers can never both count the same failure.
  const groups = groupBy(
    rows,
    ({ row, reason }) => `${row.retryCount}|${row.retryCount + 1 >= maxRetryOf(row)}|${reason}`,
    (item) => item,
  );
  for (const group of groups.values()) {
    const first = group[0];
    if (!first) continue;
    const failures = first.row.retryCount + 1;
    const dead = failures >= maxRetryOf(first.row);
    const result = await trx
      .updateTable(table.name)
      .set({
        status: dead ? OutboxStatus.dead : OutboxStatus.pending,
        retry_count: failures,
        next_retry_at: dead ? null : t(new Date(now.getTime() + table.retryDelayMs(failures))),
        last_error: errorText(first.reason),
        updated_at: t(now),
      })
      .where(
        "id",
        "in",
        group.map((item) => item.row.id),
      )
      .where("status", "=", from)
      .where("retry_count", "=", first.row.retryCount)
      .executeTakeFirst();
    const changed = Number(result.numUpdatedRows);
    if (dead) exhausted += changed;
    else retried += changed;
  }
  return { retried, exhausted };
}

/** `markDead` with the original's guard: a consumed or already dead row is never touched. */
export async function markDeadIn(
  table: OutboxTable,
  trx: Executor,
  ids: readonly number[],
  reason: string,
  now: Date,
): Promise<number> {
  if (ids.length === 0) return 0;
  const result = await trx
    .updateTable(table.name)
    .set({
      status: OutboxStatus.dead,
      next_retry_at: null,
      last_error: errorText(reason),
      updated_at: table.traits.time(now),
    })
    .where("id", "in", ids)
    .where("status", "not in", [OutboxStatus.consumed, OutboxStatus.dead])
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export function groupBy<T, V>(items: readonly T[], keyOf: (item: T) => string, pick: (item: T) => V) {
  const groups = new Map<string, V[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(pick(item));
    else groups.set(key, [pick(item)]);
  }
  return groups;
}
