import { stringifyJson } from "../../lib/json-int64.ts";
import type { Destination, SendRequest, SendResult } from "../../notifications/ports/delivery-provider.ts";
import { ACTION_TEXT, actionUrl, type FeishuContext, MESSAGE_TITLE, postJson } from "./feishu-request.ts";
import {
  bodyCode,
  bodyMessage,
  classifyStatus,
  formatRfc3339,
  responsePayload,
  resultBuilder,
  transportFailure,
} from "./feishu-response.ts";
import type { HttpsResponse } from "./https-client.ts";

/**
 * A Feishu Flow trigger webhook, exactly as SmartFlow's `internal/feishu/webhook.go` (reference §6.7): its
 * body, an optional bearer token, and its classification (2xx with a non-zero `code` → permanent; 429 and
 * 5xx → retry; 401/403 → auth; other statuses → permanent; timeouts and network errors → retry).
 */
export async function sendFlowTrigger(
  context: FeishuContext,
  destination: Destination,
  request: SendRequest,
  signal?: AbortSignal,
): Promise<SendResult> {
  const payload = {
    event: "smartflow.schedule_adjustment_ready",
    version: "1",
    notification_id: request.notificationId,
    user_id: request.userId,
    preview_id: request.previewId,
    trigger_id: request.triggerId,
    trigger_type: request.triggerType,
    target_type: request.targetType,
    target_id: request.targetId,
    message: {
      title: MESSAGE_TITLE,
      summary: request.messageText,
      action_text: ACTION_TEXT,
      action_url: actionUrl(context, request.targetUrl),
    },
    ...(request.traceId ? { trace_id: request.traceId } : {}),
    sent_at: formatRfc3339(context.clock.now()),
  };
  const headers: Record<string, string> =
    destination.authType.toLowerCase() === "bearer" && destination.bearerToken
      ? { authorization: `Bearer ${destination.bearerToken}` }
      : {};
  let response: HttpsResponse;
  try {
    response = await postJson(context, destination.url, stringifyJson(payload), headers, signal);
  } catch (error) {
    return transportFailure(error, payload);
  }
  const result = resultBuilder(
    payload,
    responsePayload(response),
    () => `feishu_webhook_${request.notificationId}_${context.clock.now().getTime()}`,
  );
  if (response.status >= 200 && response.status < 300) {
    const code = bodyCode(response.body);
    if (code !== undefined && code !== 0) {
      return result(
        "permanent_fail",
        "payload_invalid",
        bodyMessage(response.body) ?? `飞书 webhook 返回 code=${code}`,
      );
    }
    return result("success");
  }
  return classifyStatus(response.status, result);
}
