import { type RetryTransient, retryTransient } from "../db/transient-retry.ts";
import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";

/**
 * The RPCs' side of transient database errors: every method of a port the API uses is one
 * unit of work (a statement or a transaction), and a call that meets a deadlock, a lock wait timeout or a
 * lost connection is re-run (db/transient-retry.ts) before the caller hears of it, then with ABORTED or
 * UNAVAILABLE, never INTERNAL. The loops keep their own, slower retries and are not wrapped.
 */
export function createTransientRetry(logger: Logger): RetryTransient {
  return (work) =>
    retryTransient(work, {
      onRetry: (kind, attempt, error) =>
        logger.debug("transient database error; retrying", { kind, attempt, error: describeError(error) }),
      onGiveUp: (error) =>
        logger.warn("transient database errors persisted; the call is answered retryable", {
          code: error.code,
          error: describeError(error),
        }),
    });
}

/**
 * `port` with each of its methods run through `retry`. Ports are plain objects of functions (the stores'
 * factories return them), so wrapping is one pass over its own properties.
 */
export function retryingPort<T extends object>(port: T, retry: RetryTransient): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(port)) {
    wrapped[name] =
      typeof value === "function"
        ? (...args: unknown[]) =>
            retry(() => (value as (...a: unknown[]) => Promise<unknown>).apply(port, args))
        : value;
  }
  return wrapped as T;
}
