import type { Channel } from "./channel.ts";
import { isUsable, skippedSend } from "./delivery-attempt.ts";
import type { DeliveryProvider, SendRequest, SendResult } from "./ports/delivery-provider.ts";

/** SmartFlow's fixed test message (`sv/channel.go` TestFeishuWebhook). */
export const TEST_TRACE_ID = "trace_feishu_webhook_test";

export function testRequest(userId: SendRequest["userId"]): SendRequest {
  return {
    notificationId: 0,
    userId,
    triggerId: "ast_test_webhook",
    previewId: "asp_test_webhook",
    triggerType: "manual_test",
    targetType: "notification_channel",
    targetId: 0n,
    targetUrl: "/assistant/00000000-0000-0000-0000-000000000000",
    messageText: "这是一条 SmartFlow 飞书 Webhook 测试消息。",
    fallbackUsed: false,
    traceId: TEST_TRACE_ID,
    attemptCount: 1,
  };
}

/**
 * Sends the test message through the channel; a missing or disabled channel is skipped without a request,
 * with SmartFlow's message (`用户未配置飞书 Webhook 触发器`, `用户未启用飞书 Webhook 触发器`).
 */
export async function sendTestMessage(
  channel: Channel | undefined,
  provider: DeliveryProvider,
  userId: SendRequest["userId"],
  signal?: AbortSignal,
): Promise<{ result: SendResult; status: "success" | "failed"; message: string }> {
  const request = testRequest(userId);
  const result: SendResult = !isUsable(channel)
    ? skippedSend(channel, request)
    : await provider.send(
        {
          kind: channel.webhookKind,
          url: channel.webhookUrl,
          authType: channel.authType,
          bearerToken: channel.bearerToken,
          signingSecret: channel.signingSecret,
        },
        request,
        signal,
      );
  const status = result.outcome === "success" ? "success" : "failed";
  const message =
    result.outcome === "success"
      ? ""
      : result.errorMessage || (result.outcome === "skipped" ? "飞书 webhook 未配置或未启用" : "");
  return { result, status, message };
}
