import type { UserId } from "./ids.ts";
import type { WebhookKind } from "./ports/webhook-policy.ts";

/**
 * A user's notification channel: their Feishu webhook and its credentials (`user_notification_channels`).
 * "Channel" means this and nothing else here; what sends is a provider (ports/delivery-provider.ts).
 */
export interface Channel {
  readonly userId: UserId;
  readonly enabled: boolean;
  readonly webhookUrl: string;
  readonly authType: string;
  readonly bearerToken: string;
  readonly webhookKind: WebhookKind;
  readonly signingSecret: string;
  readonly lastTestStatus: string;
  readonly lastTestError: string;
  readonly lastTestAt: Date | null;
}

/** What a save writes; the last test's result is kept. */
export type ChannelUpsert = Omit<Channel, "lastTestStatus" | "lastTestError" | "lastTestAt">;

/**
 * SmartFlow's two spellings of the one channel this service has, kept as they are: the `channel` column of
 * `user_notification_channels` (and the API's `channel` field) says "feishu_webhook"; the `channel` column of
 * `notification_records` says "feishu".
 */
export const CHANNEL_NAME = "feishu_webhook";
export const RECORD_CHANNEL_NAME = "feishu";
