import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { withTimeout } from "../lib/sleep.ts";
import { RecordStatus, recordStatuses } from "../notifications/record-state.ts";
import { OutboxStatus } from "../outbox/outbox-status.ts";
import type { Series } from "./metric-series.ts";

/** What the gauges read at scrape time; the app binds them to the stores. */
export interface GaugeSources {
  /** Outbox rows per status, and how long the longest-due pending row has been due (ms). */
  outbox(): Promise<{ readonly byStatus: Readonly<Record<string, number>>; readonly oldestDueAgeMs: number }>;
  /** Notification records per status. */
  records(): Promise<Readonly<Record<string, number>>>;
  /** Jobs in this process's delivery queue. */
  deliveryBacklog(): number;
}

/** The outbox and record statuses always exported (0 when no row has them), so a series never vanishes. */
const OUTBOX_STATUSES: readonly string[] = Object.values(OutboxStatus);
const RECORD_STATUSES: readonly string[] = recordStatuses;

/**
 * Reads the stores' gauges before a scrape, within `timeoutMs`: a database that does not answer leaves the
 * last values, sets `store_poll_up` to 0 and the scrape goes on (it never hangs on a dead database).
 */
export function createStoreGauges(deps: {
  readonly sources: GaugeSources;
  readonly series: Series;
  readonly timeoutMs: number;
  readonly logger: Logger;
}) {
  const { sources, series, logger } = deps;
  // One read of the stores at a time, whatever the scrape rate: scrapes that arrive while one is in flight (even
  // one that a previous scrape stopped waiting for) share it, so scrapes can never fill the database pool.
  let reading:
    | Promise<[Awaited<ReturnType<GaugeSources["outbox"]>>, Readonly<Record<string, number>>]>
    | undefined;
  const read = () => {
    reading ??= Promise.all([sources.outbox(), sources.records()]).finally(() => {
      reading = undefined;
    });
    return reading;
  };
  return async function refresh(): Promise<void> {
    series.deliveryBacklog.set(sources.deliveryBacklog());
    try {
      const [outbox, records] = await withTimeout(read(), deps.timeoutMs, "metrics: read the stores");
      setByStatus(series.outboxRows, OUTBOX_STATUSES, outbox.byStatus);
      series.outboxOldestDue.set(outbox.oldestDueAgeMs / 1_000);
      setByStatus(series.records, RECORD_STATUSES, records);
      series.retryQueue.set(records[RecordStatus.failed] ?? 0);
      series.storesUp.set(1);
    } catch (error) {
      series.storesUp.set(0);
      logger.warn("metrics: the stores' gauges could not be read", { error: describeError(error) });
    }
  };
}

function setByStatus(
  gauge: Series["outboxRows"],
  known: readonly string[],
  counts: Readonly<Record<string, number>>,
) {
  // A status column is free text in the table: only known values become labels, the rest count as "other".
  let other = 0;
  for (const [status, n] of Object.entries(counts)) if (!known.includes(status)) other += n;
  for (const status of known) gauge.set({ status }, counts[status] ?? 0);
  gauge.set({ status: "other" }, other);
}
