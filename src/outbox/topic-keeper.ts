import { brokerRetry, createBackoff } from "../lib/backoff.ts";
import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { sleep } from "../lib/sleep.ts";
import type { MessageBus } from "../messaging/bus.ts";

/**
 * Creates the outbox topic when it is missing, retrying in the background until the broker answers. Relaying
 * never waits on it (publishing creates the topic too); only consuming does, so `run` resolves once the topic
 * exists or the signal aborted.
 */
export function createTopicKeeper(deps: {
  readonly bus: MessageBus;
  readonly topic: string;
  readonly partitions: number;
  readonly logger: Logger;
}) {
  const { bus, topic, partitions, logger } = deps;
  return {
    async run(signal: AbortSignal): Promise<void> {
      const backoff = createBackoff(brokerRetry);
      while (!signal.aborted) {
        try {
          await bus.ensureTopic(topic, partitions);
          return;
        } catch (error) {
          const delay = backoff.failed();
          logger.warn("cannot ensure outbox topic yet", { topic, error: describeError(error), delay });
          await sleep(delay, signal);
        }
      }
    },
  };
}
