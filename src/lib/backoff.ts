/**
 * Retry schedules. The schedules of rows and records are pure functions of the number of failures (n >= 1),
 * returning the delay before the next attempt; the loops' own retries (a database step, the broker) use a
 * `Backoff`, which counts failures over one of the two policies below.
 */

/**
 * The outbox relay's schedule, as in SmartFlow's main line: `base × n²`, capped. With the defaults
 * (base 1 s, cap 100 s): 1 s, 4 s, 9 s, 16 s, … 81 s, then 100 s for n >= 10. With max_retry 20 a row is
 * dead after about 21 minutes of failures.
 */
export function squareBackoffMs(failures: number, baseMs: number, maxMs: number): number {
  const n = Math.max(1, failures);
  return Math.min(baseMs * n * n, maxMs);
}

/**
 * `base × 2^(n-1)`, capped, plus up to `jitterRatio` of random extra so that a burst of failures does not come
 * back as a burst. The delivery schedule of notification records with its defaults (5 min, 30 min, 10 %):
 * 5, 10, 20, 30 min (each + 0–10 %); the 5th failure is terminal.
 */
export function exponentialBackoffMs(
  failures: number,
  baseMs: number,
  maxMs: number,
  jitterRatio: number,
  random: () => number,
): number {
  const n = Math.max(1, failures);
  const delay = Math.min(baseMs * 2 ** Math.min(n - 1, 30), maxMs);
  return Math.round(delay + delay * jitterRatio * random());
}

export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
  readonly jitterRatio: number;
}

/**
 * A database step a loop retries (claim, load, write): 0.2, 0.4, 0.8, then every 1 s, + up to 20 %. Capped
 * low: a loop that waits 10 s after the database came back adds those seconds to every recovery, and a retry
 * a second from a few loops costs the database nothing.
 */
export const databaseRetry: BackoffPolicy = { baseMs: 200, maxMs: 1_000, jitterRatio: 0.2 };

/** The broker (unreachable, topic not there yet, consumer crashed): 0.25, 0.5, 1, then every 2 s, + up to 20 %. */
export const brokerRetry: BackoffPolicy = { baseMs: 250, maxMs: 2_000, jitterRatio: 0.2 };

/**
 * The failures of one loop in a row: `failed()` counts one more and returns how long to wait before trying
 * again (`exponentialBackoffMs` over the policy); `succeeded()` starts over.
 */
export interface Backoff {
  failed(): number;
  succeeded(): void;
  readonly failures: number;
}

export function createBackoff(policy: BackoffPolicy, random: () => number = Math.random): Backoff {
  let failures = 0;
  return {
    failed() {
      failures++;
      return exponentialBackoffMs(failures, policy.baseMs, policy.maxMs, policy.jitterRatio, random);
    },
    succeeded() {
      failures = 0;
    },
    get failures() {
      return failures;
    },
  };
}
