import type { BudgetGrant, SendBudget } from "./ports/send-budget.ts";
import { giveBackToWindows, type SendWindow, takeFromWindows } from "./send-windows.ts";

/**
 * The send budget of one process (DELIVERY_RATE_LIMIT_SCOPE=process): right for a single instance, and for
 * SQLite, which has one writer anyway. Several instances on one database need the shared one
 * (sql/sql-send-budget.ts), or each would send the whole budget.
 */
export function createProcessSendBudget(windows: readonly SendWindow[]): SendBudget {
  const histories = new Map<string, number[]>();
  const longest = Math.max(...windows.map((w) => w.windowMs));
  let lastSweep = 0;
  return {
    async take(wanted, now) {
      const nowMs = now.getTime();
      if (nowMs - lastSweep > longest) {
        for (const [key, times] of histories)
          if ((times.at(-1) ?? 0) <= nowMs - longest) histories.delete(key);
        lastSweep = nowMs;
      }
      const grants = new Map<string, BudgetGrant>();
      for (const [key, count] of wanted) {
        const taken = takeFromWindows(histories.get(key) ?? [], count, nowMs, windows);
        histories.set(key, taken.history);
        grants.set(key, { granted: taken.granted, waitMs: taken.waitMs });
      }
      return grants;
    },

    async giveBack(returned, takenAt) {
      for (const [key, count] of returned) {
        const times = histories.get(key);
        if (times) histories.set(key, giveBackToWindows(times, count, takenAt.getTime()));
      }
    },
  };
}
