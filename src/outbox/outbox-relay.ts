import { brokerRetry, createBackoff, databaseRetry } from "../lib/backoff.ts";
import { describeError } from "../lib/errors.ts";
import { logFailedStep } from "../lib/failed-step-log.ts";
import { sleep, type Wakeup } from "../lib/sleep.ts";
import { type BatchResult, type PublisherDeps, publishClaimedRows, release } from "./relay-publisher.ts";
import type { ClaimedRow } from "./store/relay-store.ts";

export interface RelayOptions {
  readonly batchSize: number;
  /** How long an idle relay waits before it looks for due rows again (a local enqueue wakes it at once). */
  readonly pollIntervalMs: number;
}

export interface RelayDeps extends PublisherDeps {
  readonly wakeup: Wakeup;
  readonly options: RelayOptions;
}

/**
 * Relays due outbox rows to the broker. It starts scanning at once, keeps draining while full batches come
 * back, and polls only when idle. Rows are claimed before publishing (see `RelayStore.claimDue`), so several
 * relays never publish one row at the same time.
 *
 * Failures: an unreachable broker puts the batch back untouched and pauses the relay with a growing backoff
 * (rows stay `pending` and keep their retry budget); any other publish error counts against the rows
 * (n² s backoff, then `dead` after `max_retry`); an undecodable row is `dead` at once (relay-publisher.ts).
 */
export function createOutboxRelay(deps: RelayDeps) {
  return { run: (signal: AbortSignal) => runRelay(deps, signal) };
}

async function runRelay(deps: RelayDeps, signal: AbortSignal): Promise<void> {
  const { store, clock, logger, wakeup, options, route } = deps;
  logger.info("outbox relay started", { table: route.table, topic: route.topic });
  const unavailable = createBackoff(brokerRetry);
  const claimFailures = createBackoff(databaseRetry);
  // Pipelined: the next batch is claimed while the previous one is being published, and published only once
  // the previous one is acknowledged, so per-key order holds and the database and the broker work at once.
  let publishing: Promise<BatchResult> | undefined;
  const previousResult = async (): Promise<BatchResult | undefined> => {
    const result = publishing ? await publishing : undefined;
    publishing = undefined;
    return result;
  };
  while (!signal.aborted) {
    let rows: ClaimedRow[];
    try {
      rows = await store.claimDue(clock.now(), options.batchSize);
      claimFailures.succeeded();
    } catch (error) {
      await previousResult();
      const delay = claimFailures.failed();
      logFailedStep(logger, claimFailures.failures, "outbox relay cannot claim rows", {
        error: describeError(error),
        retryInMs: delay,
      });
      await sleep(delay, signal);
      continue;
    }
    const previous = await previousResult();
    if (previous === "broker_unavailable") {
      await release(
        deps,
        rows.map((row) => row.id),
        "broker unavailable",
      );
      const delay = unavailable.failed();
      logger.warn("broker unavailable; outbox relay pauses", { retryInMs: delay });
      await sleep(delay, signal);
      continue;
    }
    if (previous === "ok") unavailable.succeeded();
    if (rows.length === 0) {
      await wakeup.wait(options.pollIntervalMs, signal);
      continue;
    }
    publishing = publishClaimedRows(deps, rows);
  }
  await previousResult();
  logger.info("outbox relay stopped");
}
