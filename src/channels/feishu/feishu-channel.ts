import type { Clock } from "../../lib/clock.ts";
import type {
  DeliveryChannel,
  Destination,
  ProviderErrorCode,
  SendRequest,
  SendResult,
} from "../../notifications/delivery-channel.ts";
import { type HttpsClient, type HttpsResponse, TransportError } from "./https-client.ts";
import { signBotRequest } from "./signing.ts";
import { maskWebhookUrl, parseWebhookUrl } from "./webhook-url.ts";

export const MESSAGE_TITLE = "SmartFlow 日程调整建议";
export const ACTION_TEXT = "查看并确认调整";
/** Feishu rejects custom-bot bodies over 20 KB (code 9499). */
const BOT_BODY_LIMIT = 20 * 1024;

export interface FeishuChannelOptions {
  readonly client: HttpsClient;
  readonly clock: Clock;
  readonly allowedHosts: readonly string[];
  readonly frontendBaseUrl: string;
  /** Must stay below the sending lease and the RPC deadline (5 s < 6 s in SmartFlow). */
  readonly timeoutMs: number;
}

/**
 * Feishu delivery, one provider per webhook kind:
 * - Flow trigger webhooks, exactly as SmartFlow's `internal/feishu/webhook.go` (reference §6.7);
 * - group custom bots (Feishu and Lark): an interactive card with a button to the action URL, falling back to
 *   a text message when the card is refused as malformed; signed at every attempt when a secret is set; the
 *   body `code` decides the result.
 */
export function createFeishuChannel(options: FeishuChannelOptions): DeliveryChannel {
  const { client, clock } = options;

  const actionUrl = (targetUrl: string) =>
    /^https?:\/\//i.test(targetUrl)
      ? targetUrl
      : `${options.frontendBaseUrl.replace(/\/+$/, "")}/${targetUrl.replace(/^\/+/, "")}`;

  async function post(url: string, body: string, headers: Record<string, string>, signal?: AbortSignal) {
    return client.postJson(
      url,
      body,
      { "content-type": "application/json; charset=utf-8", ...headers },
      options.timeoutMs,
      signal,
    );
  }

  async function sendFlow(
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
        action_url: actionUrl(request.targetUrl),
      },
      ...(request.traceId ? { trace_id: request.traceId } : {}),
      sent_at: formatRfc3339(clock.now()),
    };
    const headers: Record<string, string> =
      destination.authType.toLowerCase() === "bearer" && destination.bearerToken
        ? { authorization: `Bearer ${destination.bearerToken}` }
        : {};
    let response: HttpsResponse;
    try {
      response = await post(destination.url, JSON.stringify(payload), headers, signal);
    } catch (error) {
      return transportFailure(error, payload);
    }
    const responsePayload = {
      status_code: response.status,
      ...(response.body ? { body: response.body } : {}),
    };
    const result = (outcome: SendResult["outcome"], errorCode?: ProviderErrorCode, errorMessage?: string) =>
      failureOrSuccess(outcome, payload, responsePayload, errorCode, errorMessage, request, "feishu_webhook");
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

  async function sendBot(
    destination: Destination,
    request: SendRequest,
    signal?: AbortSignal,
  ): Promise<SendResult> {
    const link = actionUrl(request.targetUrl);
    const card = {
      msg_type: "interactive",
      card: {
        schema: "2.0",
        header: { title: { tag: "plain_text", content: MESSAGE_TITLE }, template: "blue" },
        body: {
          elements: [
            { tag: "markdown", content: request.messageText },
            {
              tag: "button",
              text: { tag: "plain_text", content: ACTION_TEXT },
              type: "primary",
              behaviors: [{ type: "open_url", default_url: link }],
            },
          ],
        },
      },
    };
    const text = {
      msg_type: "text",
      content: {
        text: request.messageText.includes(link) ? request.messageText : `${request.messageText}\n${link}`,
      },
    };
    // Signed anew for every request: the signature is only valid within an hour of its timestamp.
    const signed = (message: object) => {
      if (!destination.signingSecret) return message;
      const timestamp = Math.floor(clock.now().getTime() / 1000);
      return {
        timestamp: String(timestamp),
        sign: signBotRequest(timestamp, destination.signingSecret),
        ...message,
      };
    };
    const cardBody = JSON.stringify(signed(card));
    let sent: object = card;
    let response: HttpsResponse;
    try {
      if (Buffer.byteLength(cardBody) > BOT_BODY_LIMIT) {
        sent = text;
        response = await post(destination.url, JSON.stringify(signed(text)), {}, signal);
      } else {
        response = await post(destination.url, cardBody, {}, signal);
        if (bodyCode(response.body) === 9499) {
          sent = text;
          response = await post(destination.url, JSON.stringify(signed(text)), {}, signal);
        }
      }
    } catch (error) {
      return transportFailure(error, sent);
    }
    const responsePayload = {
      status_code: response.status,
      ...(response.body ? { body: response.body } : {}),
    };
    const result = (outcome: SendResult["outcome"], errorCode?: ProviderErrorCode, errorMessage?: string) =>
      failureOrSuccess(outcome, sent, responsePayload, errorCode, errorMessage, request, "feishu_bot");
    if (response.status === 429)
      return result("temporary_fail", "provider_rate_limited", "feishu bot HTTP 429");
    if (response.status >= 500)
      return result("temporary_fail", "provider_5xx", `feishu bot HTTP ${response.status}`);
    const code = bodyCode(response.body);
    if (code === undefined) {
      if (response.status >= 200 && response.status < 300) {
        return result("permanent_fail", "payload_invalid", "feishu bot answered without a code");
      }
      return classifyStatus(response.status, result);
    }
    const message = `feishu code=${code}: ${bodyMessage(response.body) ?? ""}`.trim();
    switch (code) {
      case 0:
        return result("success");
      case 11232:
        return result("temporary_fail", "provider_rate_limited", message);
      case 2200:
        return result("temporary_fail", "provider_5xx", message);
      case 19001:
        return result("permanent_fail", "recipient_missing", message);
      case 19021:
      case 19022:
        return result("permanent_fail", "provider_auth_failed", message);
      default:
        // 9499 (malformed or over 20 KB, even as text), 19024 (keyword missing) and unknown codes.
        return result("permanent_fail", "payload_invalid", message);
    }
  }

  return {
    async send(destination, request, signal) {
      const parsed = parseWebhookUrl(destination.url, options.allowedHosts);
      if (!parsed.ok) {
        return {
          outcome: "permanent_fail",
          errorCode: "invalid_url",
          errorMessage: parsed.reason,
          requestPayload: {
            notification_id: request.notificationId,
            user_id: request.userId,
            webhook: maskWebhookUrl(destination.url),
          },
          responsePayload: null,
        };
      }
      return parsed.kind === "group_bot"
        ? sendBot(destination, request, signal)
        : sendFlow(destination, request, signal);
    },
  };

  function failureOrSuccess(
    outcome: SendResult["outcome"],
    requestPayload: unknown,
    responsePayload: unknown,
    errorCode: ProviderErrorCode | undefined,
    errorMessage: string | undefined,
    request: SendRequest,
    prefix: string,
  ): SendResult {
    if (outcome === "success") {
      return {
        outcome,
        providerMessageId: `${prefix}_${request.notificationId}_${clock.now().getTime()}`,
        requestPayload,
        responsePayload,
      };
    }
    return {
      outcome,
      ...(errorCode ? { errorCode } : {}),
      ...(errorMessage ? { errorMessage } : {}),
      requestPayload,
      responsePayload,
    };
  }
}

function classifyStatus(
  status: number,
  result: (outcome: SendResult["outcome"], code?: ProviderErrorCode, message?: string) => SendResult,
): SendResult {
  if (status === 429)
    return result("temporary_fail", "provider_rate_limited", "飞书 webhook 限流 (HTTP 429)");
  if (status >= 500) return result("temporary_fail", "provider_5xx", `飞书 webhook HTTP ${status}`);
  if (status === 401 || status === 403)
    return result("permanent_fail", "provider_auth_failed", `飞书 webhook HTTP ${status}`);
  return result("permanent_fail", "payload_invalid", `飞书 webhook HTTP ${status}`);
}

function transportFailure(error: unknown, requestPayload: unknown): SendResult {
  const timedOut = error instanceof TransportError && error.timedOut;
  return {
    outcome: "temporary_fail",
    errorCode: timedOut ? "provider_timeout" : "network_error",
    errorMessage: error instanceof Error ? error.message : String(error),
    requestPayload,
    responsePayload: null,
  };
}

function parseBody(body: string): Record<string, unknown> | undefined {
  if (!body.trim()) return undefined;
  try {
    const value: unknown = JSON.parse(body);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function bodyCode(body: string): number | undefined {
  const code = parseBody(body)?.code;
  return typeof code === "number" ? code : undefined;
}

function bodyMessage(body: string): string | undefined {
  const msg = parseBody(body)?.msg;
  return typeof msg === "string" && msg ? msg : undefined;
}

/** RFC 3339 with the local offset, as Go's `time.Format(time.RFC3339)` prints it. */
export function formatRfc3339(date: Date): string {
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  const local = new Date(date.getTime() + offset * 60_000).toISOString().slice(0, 19);
  return offset === 0 ? `${local}Z` : `${local}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}
