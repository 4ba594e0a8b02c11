import type { Kysely, Transaction } from "kysely";
import type { DbTraits } from "../db/db-traits.ts";
import type { Database, OutboxTableName } from "../db/schema.ts";
import { OutboxStatus } from "../db/schema.ts";
import { truncateCodePoints } from "../lib/text.ts";
import type { ServiceRoute } from "./routes.ts";

/** `last_error` keeps at most this many code points (never a split character: weakness 14). */
export const LAST_ERROR_MAX_CODE_POINTS = 2000;
export const DEFAULT_MAX_RETRY = 20;

type Executor = Kysely<Database> | Transaction<Database>;

export interface ClaimedRow {
  readonly id: number;
  readonly eventType: string;
  readonly serviceName: string;
  readonly topic: string;
  readonly messageKey: string;
  readonly payload: string;
  readonly retryCount: number;
  readonly maxRetry: number;
}

export interface RowState {
  readonly id: number;
  readonly status: string;
  readonly retryCount: number;
  readonly maxRetry: number;
}

/** What the consumer decided for each message of a batch; applied in one transaction. */
export interface Outcomes {
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

export interface OutboxStoreDeps {
  readonly db: Kysely<Database>;
  readonly traits: DbTraits;
  readonly route: ServiceRoute;
  /** Delay before the next publish after `failures` failed ones (see lib/backoff.ts). */
  readonly retryDelayMs: (failures: number) => number;
}

export type OutboxStore = ReturnType<typeof createOutboxStore>;

/**
 * Every statement the outbox runs. State changes are conditional updates (`WHERE status = …`), so a stale
 * decision — a redelivered message, a row that the sweeper re-queued, another relay — changes nothing.
 */
export function createOutboxStore({ db, traits, route, retryDelayMs }: OutboxStoreDeps) {
  const table = route.table as OutboxTableName;
  const t = traits.time;
  const errorText = (reason: string) => truncateCodePoints(reason, LAST_ERROR_MAX_CODE_POINTS);
  const maxRetryOf = (row: { maxRetry: number }) => (row.maxRetry > 0 ? row.maxRetry : DEFAULT_MAX_RETRY);
  const consumedAt = (now: Date) => ({
    status: OutboxStatus.consumed,
    consumed_at: t(now),
    last_error: null,
    next_retry_at: null,
    updated_at: t(now),
  });

  /** `failures` more failed attempts for these rows: back to pending with a backoff, or dead when exhausted. */
  async function failRows(
    trx: Executor,
    rows: readonly { readonly row: RowState; readonly reason: string }[],
    from: OutboxStatus,
    now: Date,
  ): Promise<{ retried: number; exhausted: number }> {
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
        .updateTable(table)
        .set({
          status: dead ? OutboxStatus.dead : OutboxStatus.pending,
          retry_count: failures,
          next_retry_at: dead ? null : t(new Date(now.getTime() + retryDelayMs(failures))),
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

  async function markDeadIn(trx: Executor, ids: readonly number[], reason: string, now: Date) {
    if (ids.length === 0) return 0;
    const result = await trx
      .updateTable(table)
      .set({
        status: OutboxStatus.dead,
        next_retry_at: null,
        last_error: errorText(reason),
        updated_at: t(now),
      })
      .where("id", "in", ids)
      .where("status", "not in", [OutboxStatus.consumed, OutboxStatus.dead])
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  return {
    route,

    /**
     * Claims up to `limit` due rows for publishing: selects them (`FOR UPDATE SKIP LOCKED` on MySQL, so
     * relays in other processes take disjoint rows) and marks them `published` in the same short transaction.
     * A relay that dies before publishing leaves them `published`; the sweeper re-queues them.
     */
    async claimDue(now: Date, limit: number): Promise<ClaimedRow[]> {
      return db.transaction().execute(async (trx) => {
        const rows = await trx
          .selectFrom(table)
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
          .updateTable(table)
          .set({ status: OutboxStatus.published, published_at: t(now), last_error: null, updated_at: t(now) })
          .where(
            "id",
            "in",
            rows.map((row) => Number(row.id)),
          )
          .where("status", "=", OutboxStatus.pending)
          .execute();
        return rows.map((row) => ({
          id: Number(row.id),
          eventType: row.biz_type,
          serviceName: row.service_name,
          topic: row.topic,
          messageKey: row.message_key,
          payload: row.payload,
          retryCount: Number(row.retry_count),
          maxRetry: Number(row.max_retry),
        }));
      });
    },

    /** The broker was unreachable: put claimed rows back as they were, without spending their retry budget. */
    async releaseClaimed(ids: readonly number[], reason: string, now: Date): Promise<number> {
      if (ids.length === 0) return 0;
      const result = await db
        .updateTable(table)
        .set({
          status: OutboxStatus.pending,
          published_at: null,
          last_error: errorText(reason),
          updated_at: t(now),
        })
        .where("id", "in", ids)
        .where("status", "=", OutboxStatus.published)
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    /** Publishing these claimed rows failed: retry later with backoff, or dead after `max_retry`. */
    async failPublish(rows: readonly ClaimedRow[], reason: string, now: Date) {
      return db.transaction().execute((trx) =>
        failRows(
          trx,
          rows.map((row) => ({ row: { ...row, status: OutboxStatus.published }, reason })),
          OutboxStatus.published,
          now,
        ),
      );
    },

    /** `markDead(id, reason)`: guarded so that a consumed or already dead row is never touched. */
    async markDead(ids: readonly number[], reason: string, now: Date): Promise<number> {
      return markDeadIn(db, ids, reason, now);
    },

    async loadStates(ids: readonly number[]): Promise<Map<number, RowState>> {
      const states = new Map<number, RowState>();
      if (ids.length === 0) return states;
      const rows = await db
        .selectFrom(table)
        .select(["id", "status", "retry_count", "max_retry"])
        .where("id", "in", ids)
        .execute();
      for (const row of rows) {
        const id = Number(row.id);
        states.set(id, {
          id,
          status: row.status,
          retryCount: Number(row.retry_count),
          maxRetry: Number(row.max_retry),
        });
      }
      return states;
    },

    /**
     * Applies a batch's outcomes in one transaction (one commit, one fsync), each update guarded on
     * `status = 'published'`: only rows this delivery was for are changed.
     */
    async applyOutcomes(outcomes: Outcomes, now: Date): Promise<AppliedOutcomes> {
      return db.transaction().execute(async (trx) => {
        let consumed = 0;
        if (outcomes.consumed.length > 0) {
          const result = await trx
            .updateTable(table)
            .set(consumedAt(now))
            .where("id", "in", outcomes.consumed)
            .where("status", "=", OutboxStatus.published)
            .executeTakeFirst();
          consumed = Number(result.numUpdatedRows);
        }
        let dead = 0;
        for (const [reason, ids] of groupBy(
          outcomes.dead,
          (d) => d.reason,
          (d) => d.id,
        )) {
          dead += await markDeadIn(trx, ids, reason, now);
        }
        const { retried, exhausted } = await failRows(trx, outcomes.retry, OutboxStatus.published, now);
        let deferred = 0;
        for (const item of outcomes.deferred) {
          const result = await trx
            .updateTable(table)
            .set({
              status: OutboxStatus.pending,
              next_retry_at: t(item.until),
              last_error: errorText(item.reason),
              updated_at: t(now),
            })
            .where("id", "=", item.id)
            .where("status", "=", OutboxStatus.published)
            .executeTakeFirst();
          deferred += Number(result.numUpdatedRows);
        }
        return { consumed, dead, retried, exhausted, deferred };
      });
    },

    /**
     * `consumeAndMarkConsumed(id, fn?)`, with the original's guards: locks the row, does nothing when it is
     * missing, consumed or dead, otherwise runs `fn` inside the transaction and marks the row consumed.
     * Returns whether the row was consumed by this call.
     */
    async consumeAndMarkConsumed(
      id: number,
      now: Date,
      fn?: (trx: Transaction<Database>) => Promise<void>,
    ): Promise<boolean> {
      return db.transaction().execute(async (trx) => {
        const row = await trx
          .selectFrom(table)
          .select(["status"])
          .where("id", "=", id)
          .$if(traits.skipLocked, (qb) => qb.forUpdate())
          .executeTakeFirst();
        if (!row || row.status === OutboxStatus.consumed || row.status === OutboxStatus.dead) return false;
        if (fn) await fn(trx);
        await trx.updateTable(table).set(consumedAt(now)).where("id", "=", id).execute();
        return true;
      });
    },

    /** Dead rows, newest first, after the cursor `beforeId` (exclusive). */
    async listDead(limit: number, beforeId: number | undefined, eventType: string | undefined) {
      let query = db
        .selectFrom(table)
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
      const rows = await query.execute();
      return rows.map((row) => ({
        id: Number(row.id),
        eventType: row.biz_type,
        serviceName: row.service_name,
        topic: row.topic,
        messageKey: row.message_key,
        status: row.status,
        retryCount: Number(row.retry_count),
        maxRetry: Number(row.max_retry),
        lastError: row.last_error ?? "",
        payload: row.payload,
        createdAt: traits.readTime(row.created_at),
        updatedAt: traits.readTime(row.updated_at),
      }));
    },

    /**
     * Puts dead rows back to `pending` with a fresh retry budget (conditional on `dead`), chosen by id or by
     * filter; the reason is kept in `last_error`. Returns the ids replayed.
     */
    async replayDead(
      selector:
        | { readonly ids: readonly number[] }
        | { readonly eventType: string; readonly errorContains: string; readonly limit: number },
      reason: string,
      now: Date,
    ): Promise<number[]> {
      return db.transaction().execute(async (trx) => {
        let candidates = trx
          .selectFrom(table)
          .select("id")
          .where("status", "=", OutboxStatus.dead)
          .orderBy("id")
          .$if(traits.skipLocked, (qb) => qb.forUpdate());
        if ("ids" in selector) {
          if (selector.ids.length === 0) return [];
          candidates = candidates.where("id", "in", selector.ids);
        } else {
          if (selector.eventType) candidates = candidates.where("biz_type", "=", selector.eventType);
          if (selector.errorContains)
            candidates = candidates.where("last_error", "like", `%${escapeLike(selector.errorContains)}%`);
          candidates = candidates.limit(selector.limit);
        }
        const ids = (await candidates.execute()).map((row) => Number(row.id));
        if (ids.length === 0) return [];
        await trx
          .updateTable(table)
          .set({
            status: OutboxStatus.pending,
            retry_count: 0,
            next_retry_at: t(now),
            published_at: null,
            last_error: errorText(reason),
            updated_at: t(now),
          })
          .where("id", "in", ids)
          .where("status", "=", OutboxStatus.dead)
          .execute();
        return ids;
      });
    },

    async stats(now: Date) {
      const counts = await db
        .selectFrom(table)
        .select((eb) => ["status", eb.fn.countAll<number>().as("n")])
        .groupBy("status")
        .execute();
      const oldest = await db
        .selectFrom(table)
        .select((eb) => eb.fn.min("created_at").as("oldest"))
        .where("status", "=", OutboxStatus.pending)
        .executeTakeFirst();
      const oldestAt = traits.readTime(oldest?.oldest);
      return {
        byStatus: Object.fromEntries(counts.map((row) => [row.status, Number(row.n)])) as Record<
          string,
          number
        >,
        oldestPendingAgeMs: oldestAt ? Math.max(0, now.getTime() - oldestAt.getTime()) : 0,
      };
    },

    /**
     * Re-queues rows that have sat in `published` since before `before` (weakness 3): the relay died after
     * claiming, the message was lost, or a consumer crashed on it. Each re-queue counts as a failed attempt,
     * so a message that kills its consumer every time still ends `dead` after `max_retry`.
     */
    async requeueStalePublished(before: Date, now: Date, limit: number) {
      return db.transaction().execute(async (trx) => {
        const rows = await trx
          .selectFrom(table)
          .select(["id", "status", "retry_count", "max_retry"])
          .where("status", "=", OutboxStatus.published)
          .where("published_at", "<=", t(before))
          .orderBy("id")
          .limit(limit)
          .$if(traits.skipLocked, (qb) => qb.forUpdate().skipLocked())
          .execute();
        const reason = `re-queued: published at or before ${before.toISOString()} and never consumed`;
        return failRows(
          trx,
          rows.map((row) => ({
            row: {
              id: Number(row.id),
              status: row.status,
              retryCount: Number(row.retry_count),
              maxRetry: Number(row.max_retry),
            },
            reason,
          })),
          OutboxStatus.published,
          now,
        );
      });
    },
  };
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function groupBy<T, V>(items: readonly T[], keyOf: (item: T) => string, pick: (item: T) => V) {
  const groups = new Map<string, V[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(pick(item));
    else groups.set(key, [pick(item)]);
  }
  return groups;
}
