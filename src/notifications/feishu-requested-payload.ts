import { AppError } from "../lib/errors.ts";
import { type JsonObjectText, parseJsonObject, readInt64 } from "../lib/json-int64.ts";
import { isUserId, type RecordId, type TargetId, type UserId } from "./ids.ts";

/** The event type this domain handles and requests (owned by the `notification` service's outbox). */
export const FEISHU_REQUESTED_EVENT = "notification.feishu.requested";

/** `FeishuNotificationRequestedPayload` (reference §3), as SmartFlow's producers write it. */
export interface FeishuRequestedPayload {
  /** Optional (0 when absent): names the record to reuse when it has the same dedupe key. */
  readonly notificationId: RecordId;
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
  readonly traceId: string;
  readonly requestedAt: Date;
}

/** Accepted `event_version` values: SmartFlow's "1", the outbox's default "v1", and none (weakness 10). */
export const FEISHU_REQUESTED_VERSIONS = ["", "1", "v1"] as const;

/**
 * Why a payload is refused, as `AppError.reason`: it cannot be read as SmartFlow's payload (not JSON, or a
 * field of the wrong type: Go's `json.Unmarshal` fails), or it is read but breaks SmartFlow's `Validate()`.
 */
export const PayloadFault = { unreadable: "unreadable_payload", invalid: "invalid_payload" } as const;

/**
 * The start of `last_error` on an outbox row SmartFlow's Go handler marks dead (`sv/outbox.go`), which
 * operators search for; what follows the colon is this service's own sentence.
 */
export const GO_DEAD_PREFIX = {
  [PayloadFault.unreadable]: `解析 ${FEISHU_REQUESTED_EVENT} 载荷失败`,
  [PayloadFault.invalid]: `${FEISHU_REQUESTED_EVENT} 载荷非法`,
} as const;

const poison = (field: string, message: string, reason: string = PayloadFault.invalid) =>
  new AppError("poison", `${field} ${message}`, { field, reason });

/**
 * Parses and validates a payload. The rules are SmartFlow's `Validate()`, in its order: user_id > 0,
 * preview_id, dedupe_key, target_url (a relative `/assistant/…` path), requested_at. Any failure is a
 * non-retryable `poison` error that names the field, its `reason` a `PayloadFault`. Ids are read as Go reads
 * its int64 fields (exact, any size up to 2^63 − 1; a fraction, an exponent or a larger number is not an
 * integer); a `notification_id` past 2^53 names no record of this service's.
 */
export function parseFeishuRequestedPayload(json: string): FeishuRequestedPayload {
  let object: JsonObjectText;
  try {
    object = parseJsonObject(json);
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw poison("payload", `is not JSON: ${error.message}`, PayloadFault.unreadable);
    }
    throw poison("payload", "must be a JSON object", PayloadFault.unreadable);
  }
  const p = object.value;
  const text = (name: string) => {
    const value = p[name];
    if (value === undefined || value === null) return "";
    if (typeof value !== "string") throw poison(name, "must be a string", PayloadFault.unreadable);
    // A lone surrogate (`"\ud800"`) reads as U+FFFD, as Go's decoder reads it and as the databases store it.
    return wellFormed(value).trim();
  };
  const integer = (name: string): bigint => {
    try {
      return readInt64(object, name) ?? 0n;
    } catch (error) {
      throw poison(name, (error as Error).message, PayloadFault.unreadable);
    }
  };

  const userId = integer("user_id");
  if (!isUserId(userId)) throw poison("user_id", "must be a positive integer");
  const previewId = text("preview_id");
  if (!previewId) throw poison("preview_id", "is required");
  const dedupeKey = text("dedupe_key");
  if (!dedupeKey) throw poison("dedupe_key", "is required");
  if (dedupeKey.length > 191) throw poison("dedupe_key", "must be at most 191 characters");
  const targetUrl = text("target_url");
  if (!targetUrl) throw poison("target_url", "is required");
  if (!targetUrl.startsWith("/assistant/") || targetUrl.includes("://") || targetUrl.startsWith("//")) {
    throw poison("target_url", "must be a relative /assistant/ path");
  }
  if (targetUrl.length > 255) throw poison("target_url", "must be at most 255 characters");
  const requestedRaw = text("requested_at");
  const requestedAt = new Date(requestedRaw);
  if (requestedRaw && Number.isNaN(requestedAt.getTime())) {
    throw poison("requested_at", "must be an RFC 3339 time", PayloadFault.unreadable);
  }
  if (!requestedRaw || requestedRaw.startsWith("0001-01-01")) {
    throw poison("requested_at", "is required (an RFC 3339 time)");
  }
  const notificationId = integer("notification_id");
  return {
    notificationId:
      notificationId > 0n && notificationId <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(notificationId) : 0,
    userId,
    triggerId: text("trigger_id").slice(0, 64),
    previewId: previewId.slice(0, 64),
    triggerType: text("trigger_type").slice(0, 64),
    targetType: text("target_type").slice(0, 64),
    targetId: integer("target_id"),
    dedupeKey,
    targetUrl,
    summaryText: text("summary_text"),
    fallbackText: text("fallback_text"),
    traceId: text("trace_id").slice(0, 128),
    requestedAt,
  };
}

/**
 * The payload's `trace_id` alone (trimmed; "" when there is none or the payload cannot be read, which the
 * handler reports itself): the trace a row written by a Go producer, without a `traceparent`, continues.
 */
export function payloadTraceId(json: string): string {
  try {
    const value = parseJsonObject(json).value.trace_id;
    return typeof value === "string" ? value.trim() : "";
  } catch (error) {
    if (error instanceof SyntaxError || error instanceof TypeError) return "";
    throw error;
  }
}

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** `String.prototype.toWellFormed` (ES2024). */
function wellFormed(text: string): string {
  return text.replace(loneSurrogate, "\uFFFD");
}
