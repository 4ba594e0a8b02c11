import type { Clock } from "../lib/clock.ts";
import type { EventHub } from "../lib/event-hub.ts";
import type { Logger } from "../lib/logger.ts";
import { runPeriodically } from "../lib/periodic.ts";
import type { OutboxEvents } from "./outbox-events.ts";
import type { SweeperStore, SweepResult } from "./store/sweeper-store.ts";

export interface SweeperOptions {
  /**
   * A row claimed for longer than this is presumed lost and re-queued. It must outlast the time a message may
   * legitimately wait in the topic (consumer lag) plus its handling, or healthy messages are published twice
   * (harmless for idempotent handlers, but wasteful).
   */
  readonly staleAfterMs: number;
  /**
   * A claimed row the broker has not acknowledged this long after its claim is re-queued: its relay died. It
   * must outlast any publish (a claim waits for the previous batch's publish, then makes its own).
   */
  readonly unackedAfterMs: number;
  /** OUTBOX_CLAIMED_MAX_AGE_MS: such a row created longer ago than this is dead, not re-queued. */
  readonly maxAgeMs: number;
  readonly intervalMs: number;
  readonly batchSize: number;
}

/**
 * Re-queues rows stuck in the claimed state (`published`, weakness 3): at startup, then every interval. Rows
 * older than `maxAgeMs` (e.g. ones SmartFlow's Go service published and never consumed, found when this
 * service replaces it) are dead with their age instead.
 */
export function createClaimSweeper(deps: {
  readonly store: SweeperStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly events: EventHub<OutboxEvents>;
  readonly options: SweeperOptions;
}) {
  const { store, clock, logger, events, options } = deps;

  async function sweepOnce(): Promise<SweepResult> {
    let retried = 0;
    let exhausted = 0;
    let expired = 0;
    for (;;) {
      const now = clock.now();
      const before = new Date(now.getTime() - options.staleAfterMs);
      const unackedBefore = new Date(now.getTime() - options.unackedAfterMs);
      const createdBefore = new Date(now.getTime() - options.maxAgeMs);
      const result = await store.requeueStaleClaims(
        before,
        unackedBefore,
        now,
        options.batchSize,
        createdBefore,
      );
      retried += result.retried;
      exhausted += result.exhausted;
      expired += result.expired;
      if (result.retried + result.exhausted + result.expired < options.batchSize) break;
    }
    if (retried + exhausted + expired > 0) {
      logger.warn("outbox sweeper re-queued stale claims", { retried, exhausted, expired });
      events.emit("sweeper:requeued", { retried, exhausted, expired });
    }
    return { retried, exhausted, expired };
  }

  return {
    sweepOnce,
    run(signal: AbortSignal): Promise<void> {
      return runPeriodically(signal, () => options.intervalMs, sweepOnce, logger, "outbox sweeper");
    },
  };
}
