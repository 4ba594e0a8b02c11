/**
 * The sliding-window rule of the send budget (ports/send-budget.ts), pure so that the in-process and the
 * database budgets apply the very same one: a destination's history is the times (ms, ascending) of its
 * recent sends; a send is allowed at `nowMs` while every window holds fewer than `limit` sends in its last
 * `windowMs`. The windows are Feishu's (5 per second, 100 per minute) widened by a margin
 * (DELIVERY_RATE_LIMIT_MARGIN_MS): a request reaches Feishu some time after its slot was taken, and that
 * delay varies; Feishu counts arrivals, so a window of ours must be longer than Feishu's by the spread.
 */
export interface SendWindow {
  readonly limit: number;
  readonly windowMs: number;
}

export interface WindowTake {
  readonly granted: number;
  /** 0 when all wanted sends were granted; else how long until the next one is allowed. */
  readonly waitMs: number;
  /** The history to keep (ascending): sends older than the longest window dropped, the granted ones added. */
  readonly history: number[];
}

/** Grants up to `wanted` sends at `nowMs` (all of them taken at that instant) over `history`. */
export function takeFromWindows(
  history: readonly number[],
  wanted: number,
  nowMs: number,
  windows: readonly SendWindow[],
): WindowTake {
  const longest = Math.max(...windows.map((w) => w.windowMs));
  const kept = history.filter((at) => at > nowMs - longest && at <= nowMs);
  // Times ahead of `nowMs` (another instance's clock runs ahead) count as if sent now, and are kept as they
  // are: a give-back finds its own sends by their time, so no time is ever rewritten.
  const ahead = history.filter((at) => at > nowMs);
  const counted = [...kept, ...ahead.map(() => nowMs)];
  let granted = 0;
  let waitMs = 0;
  while (granted < wanted) {
    waitMs = waitFor(counted, nowMs, windows);
    if (waitMs > 0) break;
    counted.push(nowMs);
    granted++;
  }
  const taken = new Array<number>(granted).fill(nowMs);
  return { granted, waitMs: granted < wanted ? waitMs : 0, history: [...kept, ...taken, ...ahead] };
}

/**
 * The history with up to `count` of the sends taken at `atMs` removed: sends that were granted but did not
 * happen (their claim was lost) are given back. Sends at `atMs` are alike, so which of them go is moot.
 */
export function giveBackToWindows(history: readonly number[], count: number, atMs: number): number[] {
  const kept = [...history];
  let left = count;
  for (let i = kept.length - 1; i >= 0 && left > 0; i--) {
    if (kept[i] !== atMs) continue;
    kept.splice(i, 1);
    left--;
  }
  return kept;
}

/** Ms until `history` (ascending, none after `nowMs`) allows one more send; 0: now. */
export function waitFor(history: readonly number[], nowMs: number, windows: readonly SendWindow[]): number {
  let wait = 0;
  for (const { limit, windowMs } of windows) {
    let inWindow = 0;
    for (const at of history) if (at > nowMs - windowMs) inWindow++;
    if (inWindow >= limit) {
      // The oldest of the last `limit` sends: once it leaves the window, one more fits.
      const oldest = history[history.length - limit] ?? nowMs;
      wait = Math.max(wait, oldest + windowMs - nowMs);
    }
  }
  return wait;
}
