import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";

/**
 * Runs `work` while heartbeating every `everyMs`. kafkajs heartbeats only between fetches and when a batch
 * handler asks, so a handler that waits (retrying a database outage) would otherwise go silent, be dropped
 * after the session timeout, and its partition (and the batch it is still handling) be given to another
 * member: a rebalance and a second delivery. One heartbeat at a time; a failed one (a rebalance under way)
 * is logged, and the commit after the batch reports the lost generation.
 */
export async function whileHeartbeating<T>(
  everyMs: number,
  heartbeat: () => Promise<void>,
  logger: Logger,
  work: () => Promise<T>,
): Promise<T> {
  let beating = false;
  const timer = setInterval(() => {
    if (beating) return;
    beating = true;
    heartbeat()
      .catch((error: unknown) => {
        logger.debug("kafka heartbeat during a batch failed", { error: describeError(error) });
      })
      .finally(() => {
        beating = false;
      });
  }, everyMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
