import type { Clock } from "../lib/clock.ts";
import type { EventHub } from "../lib/event-hub.ts";
import type { Logger } from "../lib/logger.ts";
import { runPeriodically } from "../lib/periodic.ts";
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
}

/**
 * Finds work that no sender holds (due `failed`, expired `sending`, stranded `pending`) at startup and then
 * every interval, and hands it to the dispatcher, whose claim decides who sends. Expired leases with no
 * attempts left become `dead` with `sending_lease_expired`.
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
    const killed = await records.killExhaustedLeases(now);
    const due = await records.findDue(
      now,
      new Date(now.getTime() - options.strandedAfterMs),
      options.batchSize,
    );
    deliveries.submit(due.map(({ id, userId }) => ({ recordId: id, userId })));
    if (due.length > 0 || killed > 0) logger.info("retry scan", { found: due.length, killed });
    events.emit("retry:scanned", { found: due.length, killed });
    return { found: due.length, killed };
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
