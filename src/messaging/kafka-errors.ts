import { AppError, describeError } from "../lib/errors.ts";

/** How kafkajs errors (read by shape: this file does not import kafkajs) become ours. */

/**
 * Broker unreachable, timed out or temporarily leaderless → `broker_unavailable`: the relay keeps the rows
 * pending and waits, without spending their retry budget. Anything else (a message too large, an
 * authorization failure) is about the messages: `internal`, not retryable, counted against each row.
 */
export function classify(error: unknown, message: string): AppError {
  let innermost: unknown = error;
  for (let depth = 0; depth < 5; depth++) {
    const cause = (innermost as { cause?: unknown } | null)?.cause;
    if (cause === undefined || cause === null) break;
    innermost = cause;
  }
  const name = (innermost as { name?: unknown } | null)?.name;
  const retriable = (innermost as { retriable?: unknown } | null)?.retriable;
  const unavailable = name === "TimeoutError" || retriable === true;
  return new AppError(
    unavailable ? "broker_unavailable" : "internal",
    `${message}: ${describeError(error)}`,
    {
      cause: error,
      retryable: unavailable,
    },
  );
}

/** A topic creation that failed only because the topic is there. */
export function alreadyExists(error: unknown): boolean {
  const errors = (error as { errors?: unknown } | null)?.errors;
  return (
    Array.isArray(errors) &&
    errors.length > 0 &&
    errors.every((e) => (e as { type?: unknown } | null)?.type === "TOPIC_ALREADY_EXISTS")
  );
}
