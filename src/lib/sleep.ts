/** Resolves after `ms`, or as soon as `signal` aborts (never rejects): loops check `signal.aborted` after it. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Resolves once `signal` aborts (at once if it has): a loop with nothing to do waits for shutdown with it. */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/**
 * A wake-up that a loop can wait on between polls: `wait(ms, signal)` returns early when `notify()` was called
 * (even before the wait began), so a producer in this process never waits out a poll interval.
 */
export interface Wakeup {
  notify(): void;
  wait(ms: number, signal: AbortSignal): Promise<void>;
}

export function createWakeup(): Wakeup {
  let pending = false;
  let wake: (() => void) | undefined;
  return {
    notify() {
      pending = true;
      wake?.();
    },
    async wait(ms, signal) {
      if (pending) {
        pending = false;
        return;
      }
      const inner = new AbortController();
      const onAbort = () => inner.abort();
      signal.addEventListener("abort", onAbort, { once: true });
      wake = () => inner.abort();
      try {
        await sleep(ms, inner.signal);
      } finally {
        wake = undefined;
        pending = false;
        signal.removeEventListener("abort", onAbort);
      }
    },
  };
}

/** Rejects with an `AbortError`-like timeout error when `promise` does not settle within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export class TimeoutError extends Error {
  override readonly name = "TimeoutError";
}
