import { sql } from "kysely";
import type { Db } from "../db/database.ts";
import type { Logger } from "../lib/logger.ts";
import { formatDuration } from "../lib/text.ts";

/** Further ahead than clocks drift apart: a wall clock read in the wrong zone. */
const SUSPECT_AHEAD_MS = 10 * 60_000;

/**
 * Warns when the newest row of a table was written well ahead of this service's clock: SmartFlow's Go
 * producers write `datetime` columns in their local zone, and if DATABASE_TIME_ZONE is not that zone every
 * row they write looks hours in the future (nothing is relayed, retried or recovered until then). Only the
 * newest row by id is read, so this costs one indexed lookup per table. MySQL only: Go never writes SQLite.
 */
export async function warnIfRowsLookAhead(
  db: Db,
  tables: readonly string[],
  now: Date,
  timeZone: string,
  logger: Logger,
): Promise<void> {
  if (db.traits.dialect !== "mysql") return;
  for (const table of tables) {
    const { rows } = await sql<{ created_at: unknown }>`select created_at from ${sql.table(table)}
      order by id desc limit 1`.execute(db.kysely);
    const newest = db.traits.readTime(rows[0]?.created_at);
    const aheadMs = newest ? newest.getTime() - now.getTime() : 0;
    if (aheadMs > SUSPECT_AHEAD_MS) {
      logger.warn(
        "rows look written in the future: do the producers write datetimes in another time zone? Set DATABASE_TIME_ZONE to theirs",
        { table, ahead: formatDuration(aheadMs), database_time_zone: timeZone },
      );
    }
  }
}
