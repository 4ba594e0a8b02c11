import { OutboxStatus } from "../outbox-status.ts";
import { errorText, failRows, markDeadIn, type OutboxTable } from "./outbox-table.ts";

/** A row a relay claimed and now publishes. */
export interface ClaimedRow {
  readonly id: number;
  readonly eventType: string;
  readonly serviceName: string;
  readonly topic: string;
  readonly messageKey: string;
  /** The row envelope JSON. */
  readonly payload: string;
  readonly retryCount: number;
  readonly maxRetry: number;
}

/** The relay's statements. */
export interface RelayStore {
  /**
   * Claims up to `limit` due rows: selects them (`FOR UPDATE SKIP LOCKED` on MySQL, so relays in other
   * processes take disjoint rows) and marks them claimed in the same short transaction. `published_at` stays
   * null until the broker acknowledged them (`markPublished`), so a relay that dies in between leaves rows the
   * sweeper can tell apart from ones whose message waits in the topic, and re-queues them soon.
   */
  claimDue(now: Date, limit: number): Promise<ClaimedRow[]>;
  /** The broker acknowledged these claimed rows' messages: `published_at` says when (as SmartFlow's). */
  markPublished(ids: readonly number[], now: Date): Promise<void>;
  /** The broker was unreachable: claimed rows go back as they were, without spending their retry budget. */
  releaseClaimed(ids: readonly number[], reason: string, now: Date): Promise<number>;
  /** Publishing these claimed rows failed: retry later with backoff, or dead after `max_retry`. */
  failPublish(
    rows: readonly ClaimedRow[],
    reason: string,
    now: Date,
  ): Promise<{ retried: number; exhausted: number }>;
  /** Rows that cannot be published at all (an undecodable envelope). */
  markDead(ids: readonly number[], reason: string, now: Date): Promise<number>;
}

export function createRelayStore(table: OutboxTable): RelayStore {
  const { db, traits } = table;
  const t = traits.time;
  return {
    claimDue: (now, limit) => claimDue(table, now, limit),

    async markPublished(ids, now) {
      if (ids.length === 0) return;
      await db
        .updateTable(table.name)
        .set({ published_at: t(now) })
        .where("id", "in", ids)
        .where("published_at", "is", null)
        .execute();
    },

    async releaseClaimed(ids, reason, now) {
      if (ids.length === 0) return 0;
      const result = await db
        .updateTable(table.name)
        .set({
          status: OutboxStatus.pending,
          published_at: null,
          last_error: errorText(reason),
          updated_at: t(now),
        })
        .where("id", "in", ids)
        .where("status", "=", OutboxStatus.claimed)
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    failPublish: (rows, reason, now) =>
      db.transaction().execute((trx) =>
        failRows(
          table,
          trx,
          rows.map((row) => ({ row: { ...row, status: OutboxStatus.claimed }, reason })),
          OutboxStatus.claimed,
          now,
        ),
      ),

    markDead: (ids, reason, now) => markDeadIn(table, db, ids, reason, now),
  };
}

/** See `RelayStore.claimDue`. */
function claimDue(table: OutboxTable, now: Date, limit: number): Promise<ClaimedRow[]> {
  const { db, traits } = table;
  const t = traits.time;
  return db.transaction().execute(async (trx) => {
    const rows = await trx
      .selectFrom(table.name)
      .select([
        "id",
        "biz_type",
        "service_name",
        "topic",
        "message_key",
        "payload",
        "retry_count",
        "max_retry",
      ])
      .where("status", "=", OutboxStatus.pending)
      .where("next_retry_at", "<=", t(now))
      .orderBy("next_retry_at")
      .orderBy("id")
      .limit(limit)
      .$if(traits.skipLocked, (qb) => qb.forUpdate().skipLocked())
      .execute();
    if (rows.length === 0) return [];
    await trx
      .updateTable(table.name)
      .set({ status: OutboxStatus.claimed, published_at: null, last_error: null, updated_at: t(now) })
      .where(
        "id",
        "in",
        rows.map((row) => row.id),
      )
      .where("status", "=", OutboxStatus.pending)
      .execute();
    return rows.map((row) => ({
      id: row.id,
      eventType: row.biz_type,
      serviceName: row.service_name,
      topic: row.topic,
      messageKey: row.message_key,
      payload: row.payload,
      retryCount: row.retry_count,
      maxRetry: row.max_retry,
    }));
  });
}
