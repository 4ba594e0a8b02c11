import { randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import type { DbTraits } from "../../db/db-traits.ts";
import type { Database } from "../../db/schema.ts";
import type { BudgetGrant, SendBudget } from "../ports/send-budget.ts";
import { type SendWindow, takeFromWindows } from "../send-windows.ts";

interface BudgetRow {
  readonly version: string;
  readonly history: readonly number[];
}

/** Compare-and-set rounds per destination and take before giving up for now (the loop asks again). */
const MAX_ROUNDS = 4;

/**
 * The send budget shared by every instance (DELIVERY_RATE_LIMIT_SCOPE=database): one row per destination in
 * `notification_send_budgets` holding its recent sends, changed only by a compare-and-set on a random
 * `version`, so a take is one conditional UPDATE, atomic across instances on MariaDB and SQLite alike.
 *
 * Fast path: each instance keeps the last row it read or wrote per destination. A take first decides on
 * that copy: a refusal needs no database at all (a row's history only grows within its windows, so a stale
 * copy can only be too lenient, never too strict), and a grant is one UPDATE guarded by the copy's version,
 * which holds as long as no other instance sent to that destination meanwhile. Only when it did (the UPDATE
 * matches nothing) is the row read again and the take retried. The destinations of one claim batch are
 * taken concurrently. Rows whose newest send left the longest window are pruned (they are equal to no row).
 */
export function createSqlSendBudget(
  db: Kysely<Database>,
  traits: DbTraits,
  windows: readonly SendWindow[],
): SendBudget {
  const known = new Map<string, BudgetRow | undefined>();
  const longest = Math.max(...windows.map((w) => w.windowMs));
  let lastPrune = 0;

  async function takeOne(key: string, wanted: number, nowMs: number): Promise<BudgetGrant> {
    let row = known.get(key);
    if (!known.has(key)) row = await read(db, key);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const taken = takeFromWindows(row?.history ?? [], wanted, nowMs, windows);
      if (taken.granted === 0) {
        known.set(key, row);
        return { granted: 0, waitMs: taken.waitMs };
      }
      const version = row
        ? await swap(db, key, row.version, taken.history, nowMs)
        : await create(db, traits, key, taken.history, nowMs);
      if (version !== undefined) {
        known.set(key, { version, history: taken.history });
        return { granted: taken.granted, waitMs: taken.waitMs };
      }
      // Another instance changed the row since this copy (or created it first): read it and decide again.
      row = await read(db, key);
    }
    known.delete(key);
    return { granted: 0, waitMs: 1 };
  }

  async function prune(nowMs: number) {
    lastPrune = nowMs;
    for (const [key, row] of known) if ((row?.history.at(-1) ?? 0) <= nowMs - longest) known.delete(key);
    await db
      .deleteFrom("notification_send_budgets")
      .where("last_sent_ms", "<", nowMs - longest)
      .execute();
  }

  return {
    async take(wanted, now) {
      const nowMs = now.getTime();
      if (nowMs - lastPrune > longest) await prune(nowMs);
      const keys = [...wanted.keys()];
      const grants = await Promise.all(keys.map((key) => takeOne(key, wanted.get(key) ?? 0, nowMs)));
      return new Map(keys.map((key, i) => [key, grants[i] ?? { granted: 0, waitMs: 1 }]));
    },
  };
}

/** The row of `key`, if there is one. */
async function read(db: Kysely<Database>, key: string): Promise<BudgetRow | undefined> {
  const row = await db
    .selectFrom("notification_send_budgets")
    .select(["version", "sent_at"])
    .where("destination", "=", key)
    .executeTakeFirst();
  return row ? { version: row.version, history: parseHistory(row.sent_at) } : undefined;
}

/** Creates the row of `key`; returns its version, or nothing when another instance created it first. */
async function create(
  db: Kysely<Database>,
  traits: DbTraits,
  key: string,
  history: number[],
  nowMs: number,
): Promise<string | undefined> {
  const version = randomUUID();
  const insert = db.insertInto("notification_send_budgets").values({
    destination: key,
    version,
    sent_at: JSON.stringify(history),
    last_sent_ms: nowMs,
  });
  const result = await (traits.dialect === "mysql"
    ? insert.ignore()
    : insert.onConflict((conflict) => conflict.column("destination").doNothing())
  ).executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) === 1 ? version : undefined;
}

/** Replaces the row of `key` if it is still at version `from`; returns its new version, or nothing. */
async function swap(db: Kysely<Database>, key: string, from: string, history: number[], nowMs: number) {
  const version = randomUUID();
  const result = await db
    .updateTable("notification_send_budgets")
    .set({ version, sent_at: JSON.stringify(history), last_sent_ms: nowMs })
    .where("destination", "=", key)
    .where("version", "=", from)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1 ? version : undefined;
}

function parseHistory(text: string): number[] {
  const parsed: unknown = JSON.parse(text);
  return Array.isArray(parsed) ? parsed.filter((at): at is number => typeof at === "number") : [];
}
