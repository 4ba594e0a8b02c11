import type { Clock } from "../lib/clock.ts";
import type { EventHub } from "../lib/event-hub.ts";
import type { Logger } from "../lib/logger.ts";
import { runPeriodically } from "../lib/periodic.ts";
import { sleep, untilAborted } from "../lib/sleep.ts";
import type { ExpiryRule, RetentionStore } from "./retention-store.ts";

export interface RetentionEvents {
  /** One round's deletions, by table (tables with none are left out); emitted when a round deleted rows. */
  "retention:deleted": { readonly tables: Readonly<Record<string, number>> };
  [name: string]: unknown;
}

export interface RetentionOptions {
  readonly rules: readonly ExpiryRule[];
  readonly intervalMs: number;
  readonly batchSize: number;
  /** Pause after each batch that filled up, so the deletes leave the database to production traffic. */
  readonly batchPauseMs: number;
}

/**
 * Deletes expired rows in small batches: at startup, then every interval. Each rule's cut-off is taken from
 * the clock when its turn comes; a rule is worked through batch by batch (select keys, delete by key list)
 * until a batch comes back short. Several instances may run it at once: they may select the same keys, and
 * the second delete of a row deletes nothing. Stopping (the signal) ends the round after the batch in flight.
 */
export function createRetentionJob(deps: {
  readonly store: RetentionStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly events: EventHub<RetentionEvents>;
  readonly options: RetentionOptions;
}) {
  const { store, clock, logger, events, options } = deps;
  const rules = options.rules.filter((rule) => rule.keepMs > 0);

  async function runOnce(signal?: AbortSignal): Promise<Record<string, number>> {
    const tables: Record<string, number> = {};
    for (const rule of rules) {
      for (;;) {
        if (signal?.aborted) break;
        const cutoff = new Date(clock.now().getTime() - rule.keepMs);
        const { deleted, more } = await store.deleteExpired(rule, cutoff, options.batchSize);
        if (deleted > 0) tables[rule.table] = (tables[rule.table] ?? 0) + deleted;
        if (!more) break;
        await sleep(options.batchPauseMs, signal);
      }
    }
    if (Object.keys(tables).length > 0) {
      logger.info("retention deleted expired rows", { tables });
      events.emit("retention:deleted", { tables });
    }
    return tables;
  }

  return {
    runOnce,
    run(signal: AbortSignal): Promise<void> {
      // Everything kept forever: nothing to do, but a loop that returned would count as failed (supervision).
      if (rules.length === 0) return untilAborted(signal);
      return runPeriodically(
        signal,
        () => options.intervalMs,
        () => runOnce(signal),
        logger,
        "retention",
      );
    },
  };
}

export type RetentionJob = ReturnType<typeof createRetentionJob>;
