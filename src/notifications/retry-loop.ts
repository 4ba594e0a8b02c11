import type { Clock } from "../lib/clock.ts";
import type { EventHub } from "../lib/event-hub.ts";
import type { Logger } from "../lib/logger.ts";
import { runPeriodically } from "../lib/periodic.ts";
import { formatDuration } from "../lib/text.ts";
import type { DeliveryEvents } from "./delivery-events.ts";
import type { DeliverySubmitter } from "./delivery-queue.ts";
import type { RecordScans } from "./ports/record-store.ts";

export interface RetryLoopOptions {
  readonly intervalMs: number;
  readonly batchSize: number;
  /** A `pending` record untouched this long lost its sender (crash between intake and claim). */
  readonly strandedAfterMs: number;
  /** ± this share of the interval, so instances do not scan in lockstep. */
  readonly jitterRatio: number;
  /** DELIVERY_MAX_AGE_MS: work created longer ago than this is `dead` (`expired`) instead of sent. */
  readonly maxAgeMs: number;
}

/**
 * Finds work that no sender holds (due `failed`, expired `sending`, stranded `pending`) at startup and then
 * every interval, and hands it to the dispatcher, whose claim decides who sends. Expired leases with no
 * attempts left become `dead` with `sending_lease_expired`; work older than `maxAgeMs` becomes `dead` with
 * `expired` (rows a stopped Go service left behind must not go out days late).
 */
export function createRetryLoop(deps: {
  readonly records: RecordScans;
  readonly deliveries: DeliverySubmitter;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly events: EventHub<DeliveryEvents>;
  readonly options: RetryLoopOptions;
  readonly random?: () => number;
}) {
  const { records, deliveries, clock, logger, events, options } = deps;
  const random = deps.random ?? Math.random;

  async function scanOnce() {
    const now = clock.now();
    const strandedBefore = new Date(now.getTime() - options.strandedAfterMs);
    const killed = await records.killExhaustedLeases(now);
    const expired = await records.expireOld(
      now,
      strandedBefore,
      new Date(now.getTime() - options.maxAgeMs),
      `not sent: created more than ${formatDuration(options.maxAgeMs)} ago (DELIVERY_MAX_AGE_MS)`,
    );
    const due = await records.findDue(now, strandedBefore, options.batchSize);
    deliveries.submit(due.map(({ id, userId }) => ({ recordId: id, userId })));
    if (due.length > 0 || killed > 0 || expired > 0) {
      logger.info("retry scan", { found: due.length, killed, expired });
    }
    events.emit("retry:scanned", { found: due.length, killed, expired });
    return { found: due.length, killed, expired };
  }

  return {
    scanOnce,
    run(signal: AbortSignal): Promise<void> {
      const interval = () =>
        Math.max(10, Math.round(options.intervalMs * (1 + options.jitterRatio * (random() * 2 - 1))));
      return runPeriodically(signal, interval, scanOnce, logger, "retry scan");
    },
  };
}

export type RetryLoop = ReturnType<typeof createRetryLoop>;
