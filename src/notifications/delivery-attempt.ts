import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import type { Channel } from "./channel.ts";
import { buildSendRequest } from "./message-composer.ts";
import type { DeliveryProvider, SendResult } from "./ports/delivery-provider.ts";
import type { NotificationRecord } from "./record.ts";

/**
 * One attempt at sending a claimed record to its user's channel. A missing or disabled channel is `skipped`
 * without a request (SmartFlow's messages); a provider that throws (it should classify instead) counts as a
 * network error, so the attempt is retried.
 */
export async function attemptDelivery(
  record: NotificationRecord,
  channel: Channel | undefined,
  provider: DeliveryProvider,
  logger: Logger,
): Promise<SendResult> {
  if (!channel?.enabled || !channel.webhookUrl.trim()) {
    return {
      outcome: "skipped",
      errorCode: "recipient_missing",
      errorMessage: channel ? "用户未启用飞书 Webhook 触发器" : "用户未配置飞书 Webhook 触发器",
      requestPayload: { notification_id: record.id, user_id: record.userId, preview_id: record.previewId },
      responsePayload: { skipped: true, reason: channel ? "channel_disabled" : "recipient_missing" },
    };
  }
  try {
    return await provider.send(
      {
        kind: channel.webhookKind,
        url: channel.webhookUrl,
        authType: channel.authType,
        bearerToken: channel.bearerToken,
        signingSecret: channel.signingSecret,
      },
      buildSendRequest(record),
    );
  } catch (error) {
    logger.error("provider threw; the attempt counts as a network error", {
      notificationId: record.id,
      error: describeError(error),
    });
    return {
      outcome: "temporary_fail",
      errorCode: "network_error",
      errorMessage: describeError(error),
      requestPayload: null,
      responsePayload: null,
    };
  }
}
