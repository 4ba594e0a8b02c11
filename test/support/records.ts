import type { NotificationRecord } from "../../src/notifications/record.ts";

/** A record as the store would return it; override what the test is about. */
export function aRecord(overrides: Partial<NotificationRecord> = {}): NotificationRecord {
  return {
    id: 1,
    userId: 42n,
    triggerId: "ast_1",
    previewId: "asp_1",
    triggerType: "unfinished_feedback",
    targetType: "task",
    targetId: 7n,
    dedupeKey: "42:unfinished_feedback:2026-03-02T10:30:00+08:00",
    targetUrl: "/assistant/conv_1",
    summaryText: "明天调整",
    fallbackText: "fb",
    fallbackUsed: false,
    status: "pending",
    attemptCount: 0,
    maxAttempts: 5,
    nextRetryAt: null,
    leaseUntil: null,
    lastErrorCode: null,
    lastError: null,
    providerMessageId: null,
    sentAt: null,
    traceId: "",
    createdAt: null,
    updatedAt: null,
    ...overrides,
  };
}
