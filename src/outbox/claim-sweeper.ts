import type { Clock } from "../lib/clock.ts";
import type { EventHub } from "../lib/event-hub.ts";
import type { Logger } from "../lib/logger.ts";
import { runPeriodically } from "../lib/periodic.ts";
import type { OutboxEvents } from "./outbox-events.ts";
import type { SweeperStore } from "./store/sweeper-store.ts";

export interface SweeperOptions {
  /**
   * A row claimed for longer than this is presumed lost and re-queued. It must outlast the time a message may
   * legitimately wait in the topic (consumer lag) plus its handling, or healthy messages are published twice
   * (harmless for idempotent handlers, but wasteful).
   */
  readonly staleAfterMs: number;
  readonly intervalMs: number;
  readonly batchSize: number;
}

/** Re-queues rows stuck in the claimed state (`published`, weakness 3): at startup, then every interval. */
export function createClaimSweeper(deps: {
  readonly store: SweeperStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly events: EventHub<OutboxEvents>;
  readonly options: SweeperOptions;
}) {
  const { store, clock, logger, events, options } = deps;

  async function sweepOnce(): Promise<{ retried: number; exhausted: number }> {
    let retried = 0;
    let exhausted = 0;
    for (;;) {
      const now = clock.now();
      const before = new Date(now.getTime() - options.staleAfterMs);
      const result = await store.requeueStaleClaims(before, now, options.batchSize);
      retried += result.retried;
      exhausted += result.exhausted;
      if (result.retried + result.exhausted < options.batchSize) break;
    }
    if (retried + exhausted > 0) {
      logger.warn("outbox sweeper re-queued stale claims", { retried, exhausted });
      events.emit("sweeper:requeued", { retried, exhausted });
    }
    return { retried, exhausted };
  }

  return {
    sweepOnce,
    run(signal: AbortSignal): Promise<void> {
      return runPeriodically(signal, () => options.intervalMs, sweepOnce, logger, "outbox sweeper");
    },
  };
}
