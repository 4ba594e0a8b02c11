import { createBackoff, databaseRetry } from "../lib/backoff.ts";
import type { Clock } from "../lib/clock.ts";
import { describeError } from "../lib/errors.ts";
import type { EventHub } from "../lib/event-hub.ts";
import { logFailedStep } from "../lib/failed-step-log.ts";
import type { Logger } from "../lib/logger.ts";
import { createWakeup, sleep } from "../lib/sleep.ts";
import { contextOfCarrier, withContext } from "../lib/trace-context.ts";
import type { DeliveryEvents } from "./delivery-events.ts";
import type { DeliveryJob } from "./delivery-queue.ts";
import type { RecordId } from "./ids.ts";
import type { SendOutcome } from "./ports/delivery-provider.ts";
import type { RecordClaims } from "./ports/record-store.ts";
import type { AttemptResult } from "./record.ts";
import { RecordStatus } from "./record-state.ts";

export interface FinishedAttempt {
  readonly result: AttemptResult;
  readonly job: DeliveryJob;
  readonly outcome: SendOutcome;
  readonly attemptCount: number;
}

/**
 * Writes finished attempts: whatever finished since the last write goes in one transaction (see
 * `RecordClaims.recordResults`), and a failed write is retried with backoff. Each attempt is then logged
 * once and reported (`delivery:result`), and `done` tells the queue it may take the record again.
 */
export function createResultFlusher(deps: {
  readonly records: Pick<RecordClaims, "recordResults">;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly events: EventHub<DeliveryEvents>;
  readonly done: (attempt: FinishedAttempt, written: boolean) => void;
}) {
  const { records, clock, logger } = deps;
  const pending: FinishedAttempt[] = [];
  /** The batch being written. */
  let writing = 0;
  const wakeup = createWakeup();
  const backoff = createBackoff(databaseRetry);

  /** Writes what is pending: `true` once written, else how long to wait before trying again. */
  async function flushOnce(): Promise<true | number> {
    const batch = pending.splice(0, pending.length);
    let written: Set<RecordId>;
    writing = batch.length;
    try {
      written = await records.recordResults(
        batch.map((b) => b.result),
        clock.now(),
      );
    } catch (error) {
      writing = 0;
      pending.unshift(...batch);
      const delay = backoff.failed();
      logFailedStep(logger, backoff.failures, "cannot record delivery results; retrying", {
        error: describeError(error),
        count: batch.length,
        retryInMs: delay,
      });
      return delay;
    }
    backoff.succeeded();
    writing = 0;
    for (const attempt of batch) report(deps, attempt, written.has(attempt.result.id));
    return true;
  }

  return {
    /** Finished attempts not written yet (waiting, or in the write under way): the dispatcher's backpressure. */
    unwritten: () => pending.length + writing,
    add(attempt: FinishedAttempt) {
      pending.push(attempt);
      wakeup.notify();
    },
    /** Writes until `stop` aborts and nothing is left (or the database kept failing after it). */
    async run(stop: AbortSignal): Promise<void> {
      while (!stop.aborted || pending.length > 0) {
        if (pending.length === 0) {
          await wakeup.wait(1_000, stop);
          continue;
        }
        const flushed = await flushOnce();
        if (flushed !== true) {
          if (stop.aborted && backoff.failures > 3) return;
          await sleep(flushed);
        }
      }
    },
  };
}

function report(
  { logger, events, done }: Parameters<typeof createResultFlusher>[0],
  attempt: FinishedAttempt,
  written: boolean,
) {
  const { result, job, outcome, attemptCount } = attempt;
  done(attempt, written);
  if (!written) {
    logger.warn("delivery result not recorded: the claim was lost (lease expired and reclaimed)", {
      notification_id: result.id,
      status: result.status,
    });
  }
  withContext(contextOfCarrier(job.trace), () =>
    logger.info("notification delivery attempt finished", {
      outbox_id: job.outboxId ?? null,
      notification_id: result.id,
      status: result.status,
      delivered: result.status === RecordStatus.sent,
      reused: job.reused ?? false,
      attempt_count: attemptCount,
      error_code: result.lastErrorCode,
    }),
  );
  events.emit("delivery:result", {
    recordId: result.id,
    status: result.status,
    outcome,
    errorCode: result.lastErrorCode,
    attemptCount,
    written,
  });
}
