import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import type { Channel } from "./channel.ts";
import { buildSendRequest } from "./message-composer.ts";
import type { DeliveryProvider, SendRequest, SendResult } from "./ports/delivery-provider.ts";
import type { NotificationRecord } from "./record.ts";

/** SmartFlow's reasons for not sending (`internal/feishu/webhook.go`); the test RPC shows them as its message. */
export const CHANNEL_MISSING = "用户未配置飞书 Webhook 触发器";
export const CHANNEL_DISABLED = "用户未启用飞书 Webhook 触发器";

/** A channel a message can be sent through: it exists, is enabled and has a URL. */
export function isUsable(channel: Channel | undefined): channel is Channel {
  return Boolean(channel?.enabled && channel.webhookUrl.trim());
}

/**
 * The attempt when the channel is not usable (none, disabled, no URL): `skipped` without a request, with
 * SmartFlow's reason and its request and response payloads.
 */
export function skippedSend(
  channel: Channel | undefined,
  request: Pick<SendRequest, "notificationId" | "userId" | "previewId">,
): SendResult {
  const reason = channel ? CHANNEL_DISABLED : CHANNEL_MISSING;
  return {
    outcome: "skipped",
    errorCode: "recipient_missing",
    errorMessage: reason,
    requestPayload: {
      notification_id: request.notificationId,
      user_id: request.userId,
      preview_id: request.previewId,
    },
    responsePayload: { skipped: true, reason },
  };
}

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
  if (!isUsable(channel)) {
    return skippedSend(channel, {
      notificationId: record.id,
      userId: record.userId,
      previewId: record.previewId,
    });
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
