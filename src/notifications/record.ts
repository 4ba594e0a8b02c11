import type { FeishuRequestedPayload } from "./feishu-requested-payload.ts";
import type { RecordId, TargetId, UserId } from "./ids.ts";
import type { NormalizedTexts } from "./message-composer.ts";
import type { RecordStatus } from "./record-state.ts";

/** A `notification_records` row (reference §5), as the domain reads it. */
export interface NotificationRecord {
  readonly id: RecordId;
  readonly userId: UserId;
  readonly triggerId: string;
  readonly previewId: string;
  readonly triggerType: string;
  readonly targetType: string;
  readonly targetId: TargetId;
  readonly dedupeKey: string;
  readonly targetUrl: string;
  readonly summaryText: string;
  readonly fallbackText: string;
  readonly fallbackUsed: boolean;
  /** A `RecordStatus`, or whatever another writer left in the column. */
  readonly status: string;
  /** Attempts made, including one in flight. */
  readonly attemptCount: number;
  /** Never 0: a row without it reads as `DEFAULT_MAX_ATTEMPTS`. */
  readonly maxAttempts: number;
  readonly nextRetryAt: Date | null;
  /** While `sending`: when the sender's lease ends and the record may be claimed again. */
  readonly leaseUntil: Date | null;
  readonly lastErrorCode: string | null;
  readonly lastError: string | null;
  readonly providerMessageId: string | null;
  readonly sentAt: Date | null;
  readonly traceId: string;
  readonly createdAt: Date | null;
  readonly updatedAt: Date | null;
}

/** One validated event to take in: its payload and the texts its message will use. */
export interface IntakeItem {
  readonly payload: FeishuRequestedPayload;
  readonly texts: NormalizedTexts;
}

export interface IntakeResult {
  readonly record: NotificationRecord;
  /** False only for the event whose insert created the record. */
  readonly reused: boolean;
}

/** What one finished attempt writes; applied only while the writer still owns the claim. */
export interface AttemptResult {
  readonly id: RecordId;
  readonly claimToken: string;
  readonly status: RecordStatus;
  readonly lastErrorCode: string | null;
  readonly lastError: string | null;
  readonly nextRetryAt: Date | null;
  readonly sentAt: Date | null;
  readonly providerMessageId: string | null;
  readonly requestJson: string | null;
  readonly responseJson: string | null;
}

/** A record that needs a sender, as the retry scan finds it. */
export interface DueRecord {
  readonly id: RecordId;
  readonly userId: UserId;
}
