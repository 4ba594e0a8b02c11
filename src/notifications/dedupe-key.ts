import type { UserId } from "./ids.ts";

/** SmartFlow's `DefaultFeishuNotificationDedupeWindow`. */
export const DEFAULT_DEDUPE_WINDOW_MS = 30 * 60_000;

/**
 * SmartFlow's `BuildFeishuNotificationDedupeKey`, byte for byte: `"<userID>:<triggerType>:" +
 * requestedAt.Truncate(window).Format(RFC3339)`, e.g. `42:unfinished_feedback:2026-03-02T10:30:00+08:00`.
 * Buckets are fixed in absolute time (Go's Truncate works on the instant since year 1, which for windows that
 * divide a day equals truncating Unix time); the offset printed is that of `utcOffsetMinutes`, the producer's
 * zone. Returns "" when the user, the trigger type or the time is missing, as the original does.
 */
export function buildFeishuDedupeKey(
  userId: UserId,
  triggerType: string,
  requestedAt: Date | undefined,
  utcOffsetMinutes: number,
  windowMs = DEFAULT_DEDUPE_WINDOW_MS,
): string {
  const type = triggerType.trim();
  if (userId <= 0n || !type || !requestedAt || Number.isNaN(requestedAt.getTime())) return "";
  const window = windowMs > 0 ? windowMs : DEFAULT_DEDUPE_WINDOW_MS;
  const bucket = Math.floor(requestedAt.getTime() / window) * window;
  return `${userId}:${type}:${formatWithOffset(new Date(bucket), utcOffsetMinutes)}`;
}

function formatWithOffset(date: Date, offsetMinutes: number): string {
  const local = new Date(date.getTime() + offsetMinutes * 60_000).toISOString().slice(0, 19);
  if (offsetMinutes === 0) return `${local}Z`;
  const abs = Math.abs(offsetMinutes);
  const sign = offsetMinutes > 0 ? "+" : "-";
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}
