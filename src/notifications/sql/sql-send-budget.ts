import { randomUUID } from "node:crypto";
import { type Kysely, sql } from "kysely";
import type { DbTraits } from "../../db/db-traits.ts";
import type { Database } from "../../db/schema.ts";
import type { BudgetGrant, SendBudget } from "../ports/send-budget.ts";
import { giveBackToWindows, type SendWindow, takeFromWindows } from "../send-windows.ts";

interface BudgetRow {
  readonly version: string;
  readonly history: readonly number[];
}

/** A grant to write: the destination's new history under a new version, replacing version `from`. */
interface Planned {
  readonly key: string;
  readonly from: string | undefined;
  readonly version: string;
  readonly history: number[];
  readonly grant: BudgetGrant;
}

/** Compare-and-set rounds per take before the destinations still contended are refused for now. */
const MAX_ROUNDS = 4;

/**
 * The send budget shared by every instance (DELIVERY_RATE_LIMIT_SCOPE=database): one row per destination in
 * `notification_send_budgets` holding its recent sends, changed only by a compare-and-set on a random
 * `version`, so a take is one conditional statement, atomic across instances on MariaDB and SQLite alike.
 *
 * Fast path: each instance keeps the last copy of each row it read or wrote, and decides on it. A refusal
 * needs no database (other instances only add sends, or give back their own lost ones, so a stale copy that
 * refuses is at worst stricter for a while, never looser); the grants of all destinations of a claim batch
 * are written by ONE UPDATE (each row guarded by its copy's version) and one INSERT for destinations new to
 * the table. Only when another instance wrote a
 * row meanwhile (fewer rows matched) are the rows read, and the losers decided again. Rows whose newest send
 * left the longest window are pruned: they are equal to no row.
 */
export function createSqlSendBudget(
  db: Kysely<Database>,
  traits: DbTraits,
  windows: readonly SendWindow[],
): SendBudget {
  const { known, change } = createBudgetRows(db, traits);
  const longest = Math.max(...windows.map((w) => w.windowMs));
  let lastPrune = 0;

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
      const grants = new Map<string, BudgetGrant>();
      const { won, contended } = await change([...wanted.keys()], (key, row) => {
        const taken = takeFromWindows(row?.history ?? [], wanted.get(key) ?? 0, nowMs, windows);
        const grant = { granted: taken.granted, waitMs: taken.waitMs };
        if (taken.granted > 0)
          return { key, from: row?.version, version: randomUUID(), history: taken.history, grant };
        grants.set(key, grant);
        return undefined;
      });
      for (const p of won) grants.set(p.key, p.grant);
      for (const key of contended) grants.set(key, { granted: 0, waitMs: 1 });
      return grants;
    },

    /**
     * Removes the returned sends from each row by the same compare-and-set. Rounds run out only under
     * constant contention, and then the sends stay spent: stricter, never looser. Other instances see the
     * room once they next read the row.
     */
    async giveBack(returned, takenAt) {
      await change([...returned.keys()], (key, row) => {
        if (!row) return undefined;
        const history = giveBackToWindows(row.history, returned.get(key) ?? 0, takenAt.getTime());
        if (history.length === row.history.length) return undefined;
        return { key, from: row.version, version: randomUUID(), history, grant: NOTHING };
      });
    },
  };
}

/**
 * This instance's copies of the budget rows, and the compare-and-set rounds that change them (one guarded
 * UPDATE, and one INSERT for new rows, per round).
 */
function createBudgetRows(db: Kysely<Database>, traits: DbTraits) {
  const known = new Map<string, BudgetRow | undefined>();

  async function refresh(keys: readonly string[]) {
    const rows = await read(db, keys);
    for (const key of keys) known.set(key, rows.get(key));
    return rows;
  }

  /**
   * Compare-and-set rounds over `keys`: `plan` says each row's new history from the copy in `known` (or
   * nothing to write); a row another instance wrote first is read and planned again. Returns the plans
   * written and the keys still contended when the rounds ran out.
   */
  async function change(
    keys: readonly string[],
    plan: (key: string, row: BudgetRow | undefined) => Planned | undefined,
  ) {
    const unknown = keys.filter((key) => !known.has(key));
    if (unknown.length > 0) await refresh(unknown);
    const won: Planned[] = [];
    let pending = [...keys];
    for (let round = 0; round < MAX_ROUNDS && pending.length > 0; round++) {
      const planned = pending.flatMap((key) => plan(key, known.get(key)) ?? []);
      const written = await write(db, traits, planned);
      pending = [];
      if (written < planned.length) {
        // Another instance wrote some of these rows first: whose write is in the table tells who won.
        const rows = await refresh(planned.map((p) => p.key));
        for (const p of planned) {
          if (rows.get(p.key)?.version === p.version) won.push(p);
          else pending.push(p.key);
        }
      } else {
        for (const p of planned) known.set(p.key, { version: p.version, history: p.history });
        won.push(...planned);
      }
    }
    return { won, contended: pending };
  }

  return { known, change };
}

const NOTHING: BudgetGrant = { granted: 0, waitMs: 0 };

/**
 * Writes the planned histories: one guarded UPDATE for the existing rows, one INSERT for new ones; rows
 * written. `last_sent_ms` is each history's newest send (0 for none), what pruning goes by.
 */
async function write(db: Kysely<Database>, traits: DbTraits, planned: readonly Planned[]) {
  let written = 0;
  const updates = planned.filter((p) => p.from !== undefined);
  const inserts = planned.filter((p) => p.from === undefined);
  if (updates.length > 0) {
    const byKey = <T extends string | number>(value: (p: Planned) => T) =>
      sql<T>`case destination ${sql.join(
        updates.map((p) => sql`when ${p.key} then ${value(p)}`),
        sql` `,
      )} end`;
    const result = await db
      .updateTable("notification_send_budgets")
      // No assignment reads a column another one sets (MySQL applies them in order, SQLite all at once).
      .set({
        sent_at: byKey((p) => JSON.stringify(p.history)),
        last_sent_ms: byKey(newest),
        version: byKey((p) => p.version),
      })
      .where((eb) =>
        eb.or(updates.map((p) => eb.and([eb("destination", "=", p.key), eb("version", "=", p.from ?? "")]))),
      )
      .executeTakeFirst();
    written += Number(result.numUpdatedRows);
  }
  if (inserts.length > 0) {
    const insert = db.insertInto("notification_send_budgets").values(
      inserts.map((p) => ({
        destination: p.key,
        version: p.version,
        sent_at: JSON.stringify(p.history),
        last_sent_ms: newest(p),
      })),
    );
    const result = await (traits.dialect === "mysql"
      ? insert.ignore()
      : insert.onConflict((conflict) => conflict.column("destination").doNothing())
    ).executeTakeFirst();
    written += Number(result.numInsertedOrUpdatedRows ?? 0);
  }
  return written;
}

const newest = (p: Planned) => p.history.at(-1) ?? 0;

/** The rows of `keys` that exist. */
async function read(db: Kysely<Database>, keys: readonly string[]): Promise<Map<string, BudgetRow>> {
  const rows = await db
    .selectFrom("notification_send_budgets")
    .select(["destination", "version", "sent_at"])
    .where("destination", "in", keys)
    .execute();
  return new Map(
    rows.map((row) => [row.destination, { version: row.version, history: parseHistory(row.sent_at) }]),
  );
}

function parseHistory(text: string): number[] {
  const parsed: unknown = JSON.parse(text);
  return Array.isArray(parsed) ? parsed.filter((at): at is number => typeof at === "number") : [];
}
