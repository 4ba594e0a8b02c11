import { setting } from "./setting.ts";
import { integer } from "./value-parsers.ts";

/**
 * The retention job (`config.retention`), a group of the spec table (config-spec.ts), passed by
 * src/app/retention-wiring.ts. A row's age is its `updated_at`: when it reached its final state. 0 keeps rows
 * forever; rows not in a final state (pending, published, failed, sending) are never deleted.
 */
export const retentionSpec = {
  consumedDays: setting(
    "RETENTION_CONSUMED_DAYS",
    "7",
    integer(0, 36_500),
    "`consumed` outbox rows are deleted this many days after they were consumed; 0: kept forever",
  ),
  recordsDays: setting(
    "RETENTION_RECORDS_DAYS",
    "30",
    integer(0, 36_500),
    "`sent` and `skipped` notification records (and the RPC's idempotency keys, by their creation) are deleted this many days after their last change; 0: kept forever",
  ),
  deadDays: setting(
    "RETENTION_DEAD_DAYS",
    "90",
    integer(0, 36_500),
    "`dead` outbox rows and `dead` records (what an operator replays) are deleted this many days after they died; 0: kept forever; at least the two above",
  ),
  intervalMs: setting(
    "RETENTION_INTERVAL_MS",
    "600000",
    integer(1_000),
    "the retention job runs at startup, then this long after each round has finished",
  ),
  batchSize: setting(
    "RETENTION_BATCH_SIZE",
    "500",
    integer(1, 10_000),
    "rows deleted per statement (selected by id, deleted by id list): small batches hold few locks briefly",
  ),
  batchPauseMs: setting(
    "RETENTION_BATCH_PAUSE_MS",
    "100",
    integer(0, 60_000),
    "pause between two batches, so the deletes leave the database to production traffic",
  ),
};

/** Dead rows are kept at least as long as the others: they are the ones an operator may still need. */
export function retentionCrossCheck(retention: {
  readonly consumedDays: number;
  readonly recordsDays: number;
  readonly deadDays: number;
}): string | undefined {
  const { consumedDays, recordsDays, deadDays } = retention;
  if (deadDays === 0) return undefined;
  if (consumedDays === 0 || recordsDays === 0 || deadDays < Math.max(consumedDays, recordsDays)) {
    return "RETENTION_DEAD_DAYS must be 0 (forever) or at least RETENTION_CONSUMED_DAYS and RETENTION_RECORDS_DAYS (neither 0)";
  }
  return undefined;
}
