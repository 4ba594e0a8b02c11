import { describeError } from "./errors.ts";
import type { Logger } from "./logger.ts";
import { sleep } from "./sleep.ts";

/**
 * Runs `work` at once and then every `intervalMs()` until `signal` aborts; a failure is logged and the next
 * round goes on. Resolves after the round in flight has finished.
 */
export async function runPeriodically(
  signal: AbortSignal,
  intervalMs: () => number,
  work: () => Promise<unknown>,
  logger: Logger,
  what: string,
): Promise<void> {
  while (!signal.aborted) {
    try {
      await work();
    } catch (error) {
      logger.error(`${what} failed`, { error: describeError(error) });
    }
    await sleep(intervalMs(), signal);
  }
}
