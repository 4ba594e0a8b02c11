/**
 * Retry schedules, as pure functions of the attempt number. Each returns the delay before attempt `n + 1`
 * after `n` failures (n >= 1).
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
 * The delivery schedule for notification records: `base × 2^(n-1)`, capped, plus up to `jitterRatio` of
 * random extra so that a burst of failures does not come back as a burst. With the defaults (5 min, 30 min,
 * 10 %): 5, 10, 20, 30 min (each + 0–10 %); the 5th failure is terminal.
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
