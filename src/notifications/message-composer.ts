import type { SendRequest } from "./ports/delivery-provider.ts";
import type { NotificationRecord } from "./record.ts";

export const DEFAULT_FALLBACK_TEMPLATE = "我为你生成了一份日程调整建议，请回到系统确认是否应用。";
export const SUMMARY_MAX_CODE_POINTS = 180;

export interface NormalizedTexts {
  readonly summaryText: string;
  readonly fallbackText: string;
  readonly fallbackUsed: boolean;
}

/**
 * SmartFlow's `normalizeMessageTemplate` (§6.5): the fallback is trimmed (or the default template); a summary
 * that is empty or carries a link (`://` or `www.`) is dropped in favour of the fallback; otherwise the
 * summary is cut to 180 code points.
 */
export function normalizeTexts(summary: string, fallback: string): NormalizedTexts {
  const fallbackText = fallback.trim() || DEFAULT_FALLBACK_TEMPLATE;
  const trimmed = summary.trim();
  const lower = trimmed.toLowerCase();
  if (!trimmed || lower.includes("://") || lower.includes("www.")) {
    return { summaryText: "", fallbackText, fallbackUsed: true };
  }
  return {
    summaryText: Array.from(trimmed).slice(0, SUMMARY_MAX_CODE_POINTS).join(""),
    fallbackText,
    fallbackUsed: false,
  };
}

/** What composing a message needs of a record; `attemptCount` includes the attempt being made. */
export type ComposableRecord = Pick<
  NotificationRecord,
  | "id"
  | "userId"
  | "triggerId"
  | "previewId"
  | "triggerType"
  | "targetType"
  | "targetId"
  | "targetUrl"
  | "summaryText"
  | "fallbackText"
  | "fallbackUsed"
  | "traceId"
  | "attemptCount"
>;

/**
 * SmartFlow's `buildSendRequest`: the summary, or the fallback when it was used or is empty, or the default
 * template; the target URL is appended on its own line unless the text already contains it.
 */
export function buildSendRequest(record: ComposableRecord): SendRequest {
  let text = record.fallbackUsed || !record.summaryText ? record.fallbackText : record.summaryText;
  if (!text.trim()) text = DEFAULT_FALLBACK_TEMPLATE;
  if (record.targetUrl && !text.includes(record.targetUrl)) text = `${text}\n${record.targetUrl}`;
  return {
    notificationId: record.id,
    userId: record.userId,
    triggerId: record.triggerId,
    previewId: record.previewId,
    triggerType: record.triggerType,
    targetType: record.targetType,
    targetId: record.targetId,
    targetUrl: record.targetUrl,
    messageText: text,
    fallbackUsed: record.fallbackUsed,
    traceId: record.traceId,
    attemptCount: record.attemptCount,
  };
}
