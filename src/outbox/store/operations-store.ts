import { sql } from "kysely";
import { OutboxStatus } from "../outbox-status.ts";
import { errorText, type OutboxTable } from "./outbox-table.ts";

export interface DeadMessage {
  readonly id: number;
  readonly eventType: string;
  readonly serviceName: string;
  readonly topic: string;
  readonly messageKey: string;
  readonly status: string;
  readonly retryCount: number;
  readonly maxRetry: number;
  readonly lastError: string;
  readonly payload: string;
  readonly createdAt: Date | null;
  readonly updatedAt: Date | null;
}

export type ReplaySelector =
  | { readonly ids: readonly number[] }
  | { readonly eventType: string; readonly errorContains: string; readonly limit: number };

export interface OutboxStats {
  readonly byStatus: Readonly<Record<string, number>>;
  readonly oldestPendingAgeMs: number;
  /** How long the longest-due pending row has been due (`next_retry_at` passed): the relay's lag; 0 if none. */
  readonly oldestDueAgeMs: number;
}

/** What the operations API reads and repairs (src/api/ops-handlers.ts). */
export interface OutboxOperations {
  /** Dead rows, newest first, after the cursor `beforeId` (exclusive). */
  listDead(
    limit: number,
    beforeId: number | undefined,
    eventType: string | undefined,
  ): Promise<DeadMessage[]>;
  /**
   * Puts dead rows back to `pending` with a fresh retry budget (conditional on `dead`), chosen by id or by
   * filter; the reason is kept in `last_error`. Returns the ids replayed.
   */
  replayDead(selector: ReplaySelector, reason: string, now: Date): Promise<number[]>;
  /** Rows per status (column values), and the age of the oldest pending row. */
  stats(now: Date): Promise<OutboxStats>;
}

export function createOutboxOperations(table: OutboxTable): OutboxOperations {
  return {
    listDead: (limit, beforeId, eventType) => listDead(table, limit, beforeId, eventType),
    replayDead: (selector, reason, now) => replayDead(table, selector, reason, now),
    stats: (now) => stats(table, now),
  };
}

async function listDead(
  { db, traits, name }: OutboxTable,
  limit: number,
  beforeId: number | undefined,
  eventType: string | undefined,
): Promise<DeadMessage[]> {
  let query = db
    .selectFrom(name)
    .select([
      "id",
      "biz_type",
      "service_name",
      "topic",
      "message_key",
      "status",
      "retry_count",
      "max_retry",
      "last_error",
      "payload",
      "created_at",
      "updated_at",
    ])
    .where("status", "=", OutboxStatus.dead)
    .orderBy("id", "desc")
    .limit(limit);
  if (beforeId !== undefined) query = query.where("id", "<", beforeId);
  if (eventType) query = query.where("biz_type", "=", eventType);
  return (await query.execute()).map((row) => ({
    id: row.id,
    eventType: row.biz_type,
    serviceName: row.service_name,
    topic: row.topic,
    messageKey: row.message_key,
    status: row.status,
    retryCount: row.retry_count,
    maxRetry: row.max_retry,
    lastError: row.last_error ?? "",
    payload: row.payload,
    createdAt: traits.readTime(row.created_at),
    updatedAt: traits.readTime(row.updated_at),
  }));
}

function replayDead({ db, traits, name }: OutboxTable, selector: ReplaySelector, reason: string, now: Date) {
  return db.transaction().execute(async (trx) => {
    let candidates = trx
      .selectFrom(name)
      .select("id")
      .where("status", "=", OutboxStatus.dead)
      .orderBy("id")
      .$if(traits.skipLocked, (qb) => qb.forUpdate());
    if ("ids" in selector) {
      if (selector.ids.length === 0) return [];
      candidates = candidates.where("id", "in", selector.ids);
    } else {
      if (selector.eventType) candidates = candidates.where("biz_type", "=", selector.eventType);
      if (selector.errorContains) {
        const pattern = `%${escapeLike(selector.errorContains)}%`;
        candidates = candidates.where(sql<boolean>`last_error like ${pattern} escape ${LIKE_ESCAPE}`);
      }
      candidates = candidates.limit(selector.limit);
    }
    const ids = (await candidates.execute()).map((row) => row.id);
    if (ids.length === 0) return [];
    await trx
      .updateTable(name)
      .set({
        status: OutboxStatus.pending,
        retry_count: 0,
        // A fresh budget of crashes too: a row dead from a crash loop is replayed once its cause is fixed.
        started_attempts: 0,
        finished_attempts: 0,
        next_retry_at: traits.time(now),
        published_at: null,
        last_error: errorText(reason),
        updated_at: traits.time(now),
      })
      .where("id", "in", ids)
      .where("status", "=", OutboxStatus.dead)
      .execute();
    return ids;
  });
}

async function stats({ db, traits, name }: OutboxTable, now: Date): Promise<OutboxStats> {
  const counts = await db
    .selectFrom(name)
    .select((eb) => ["status", eb.fn.countAll<number>().as("n")])
    .groupBy("status")
    .execute();
  const oldest = await db
    .selectFrom(name)
    .select((eb) => eb.fn.min("created_at").as("oldest"))
    .where("status", "=", OutboxStatus.pending)
    .executeTakeFirst();
  const oldestDue = await db
    .selectFrom(name)
    .select((eb) => eb.fn.min("next_retry_at").as("due"))
    .where("status", "=", OutboxStatus.pending)
    .where("next_retry_at", "<=", traits.time(now))
    .executeTakeFirst();
  const oldestAt = traits.readTime(oldest?.oldest);
  const dueAt = traits.readTime(oldestDue?.due);
  return {
    // COUNT(*) is a BIGINT: mysql2 may hand it over as a string.
    byStatus: Object.fromEntries(counts.map((row) => [row.status, Number(row.n)])),
    oldestPendingAgeMs: oldestAt ? Math.max(0, now.getTime() - oldestAt.getTime()) : 0,
    oldestDueAgeMs: dueAt ? Math.max(0, now.getTime() - dueAt.getTime()) : 0,
  };
}

/**
 * The LIKE escape character, named in the statement (SQLite has no default one, MySQL's backslash depends
 * on NO_BACKSLASH_ESCAPES): `!`, which needs no escaping in a string literal on either database.
 */
const LIKE_ESCAPE = "!";

/** `text` as a LIKE pattern that matches itself: its `%`, `_` and escape characters escaped. */
function escapeLike(text: string): string {
  return text.replace(/[!%_]/g, (c) => `${LIKE_ESCAPE}${c}`);
}
