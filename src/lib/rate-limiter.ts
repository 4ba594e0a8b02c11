/**
 * Sliding-window limits per key (e.g. Feishu's 5 requests/s and 100 requests/min per bot). `tryTake` either
 * takes a slot now (returns 0) or says how many ms until one frees up; callers queue instead of failing.
 */
export interface RateLimiter {
  tryTake(key: string, nowMs: number): number;
}

export interface RateWindow {
  readonly limit: number;
  readonly windowMs: number;
}

export function createRateLimiter(windows: readonly RateWindow[]): RateLimiter {
  const longest = Math.max(...windows.map((w) => w.windowMs));
  const history = new Map<string, number[]>();
  let lastSweep = 0;
  return {
    tryTake(key, nowMs) {
      if (nowMs - lastSweep > longest) {
        for (const [k, times] of history) if ((times.at(-1) ?? 0) <= nowMs - longest) history.delete(k);
        lastSweep = nowMs;
      }
      let times = history.get(key);
      if (!times) {
        times = [];
        history.set(key, times);
      }
      while (times.length > 0 && (times[0] ?? 0) <= nowMs - longest) times.shift();
      let wait = 0;
      for (const { limit, windowMs } of windows) {
        const inWindow = times.filter((at) => at > nowMs - windowMs);
        if (inWindow.length >= limit) {
          const oldest = inWindow[inWindow.length - limit] ?? nowMs;
          wait = Math.max(wait, oldest + windowMs - nowMs);
        }
      }
      if (wait > 0) return wait;
      times.push(nowMs);
      return 0;
    },
  };
}
