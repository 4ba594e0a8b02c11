import type { RecordId, TargetId, UserId } from "../ids.ts";
import type { WebhookKind } from "./webhook-policy.ts";

/**
 * The port between the notification domain and a provider (src/channels/feishu): it sends one request to one
 * destination and classifies the result; it never throws for a provider-side failure.
 */
export interface DeliveryProvider {
  send(destination: Destination, request: SendRequest, signal?: AbortSignal): Promise<SendResult>;
}

/** Where a user's notifications go: their channel's webhook and credentials. */
export interface Destination {
  readonly kind: WebhookKind;
  readonly url: string;
  /** "bearer" or "none" (Flow triggers only). */
  readonly authType: string;
  readonly bearerToken: string;
  /** Group bots only; "" when the bot does not sign. */
  readonly signingSecret: string;
}

/** SmartFlow's `SendRequest` (reference §6.6). */
export interface SendRequest {
  readonly notificationId: RecordId;
  readonly userId: UserId;
  readonly triggerId: string;
  readonly previewId: string;
  readonly triggerType: string;
  readonly targetType: string;
  readonly targetId: TargetId;
  readonly targetUrl: string;
  readonly messageText: string;
  readonly fallbackUsed: boolean;
  readonly traceId: string;
  readonly attemptCount: number;
}

export type SendOutcome = "success" | "temporary_fail" | "permanent_fail" | "skipped";

/** Retryable: provider_timeout, provider_rate_limited, provider_5xx, network_error. The rest are permanent. */
export type ProviderErrorCode =
  | "provider_timeout"
  | "provider_rate_limited"
  | "provider_5xx"
  | "network_error"
  | "recipient_missing"
  | "invalid_url"
  | "provider_auth_failed"
  | "payload_invalid";

export interface SendResult {
  readonly outcome: SendOutcome;
  readonly providerMessageId?: string;
  readonly errorCode?: ProviderErrorCode;
  readonly errorMessage?: string;
  /** What was sent (secrets removed), kept in `provider_request_json`. */
  readonly requestPayload: unknown;
  /** What came back, kept in `provider_response_json`. */
  readonly responsePayload: unknown;
}
