import type { Destination, SendRequest, SendResult } from "../../notifications/ports/delivery-provider.ts";
import { ACTION_TEXT, actionUrl, type FeishuContext, MESSAGE_TITLE, postJson } from "./feishu-request.ts";
import {
  bodyCode,
  bodyMessage,
  classifyStatus,
  type ResultOf,
  responsePayload,
  resultBuilder,
  transportFailure,
} from "./feishu-response.ts";
import type { HttpsResponse } from "./https-client.ts";
import { signBotRequest } from "./signing.ts";

/** Feishu rejects custom-bot bodies over 20 KB (code 9499). */
const BOT_BODY_LIMIT = 20 * 1024;

/**
 * A Feishu or Lark group custom bot: an interactive card with a button to the action URL, falling back to a
 * text message when the card is refused as malformed (9499) or over 20 KB; signed at every request when a
 * secret is set; the body `code` decides the result.
 */
export async function sendGroupBot(
  context: FeishuContext,
  destination: Destination,
  request: SendRequest,
  signal?: AbortSignal,
): Promise<SendResult> {
  const { card, text } = botMessages(context, request);
  // Signed anew for every request: the signature is only valid within an hour of its timestamp.
  const signed = (message: object) => {
    if (!destination.signingSecret) return message;
    const timestamp = Math.floor(context.clock.now().getTime() / 1000);
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
      response = await postJson(context, destination.url, JSON.stringify(signed(text)), {}, signal);
    } else {
      response = await postJson(context, destination.url, cardBody, {}, signal);
      if (bodyCode(response.body) === 9499) {
        sent = text;
        response = await postJson(context, destination.url, JSON.stringify(signed(text)), {}, signal);
      }
    }
  } catch (error) {
    return transportFailure(error, sent);
  }
  const result = resultBuilder(
    sent,
    responsePayload(response),
    () => `feishu_bot_${request.notificationId}_${context.clock.now().getTime()}`,
  );
  return classifyBotResponse(response, result);
}

function botMessages(context: FeishuContext, request: SendRequest) {
  const link = actionUrl(context, request.targetUrl);
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
  return { card, text };
}

/** 0 → sent; 11232, 2200, HTTP 429, 5xx → retry; 9499, 19001, 19021, 19022, 19024 and unknown codes → dead. */
function classifyBotResponse(response: HttpsResponse, result: ResultOf): SendResult {
  if (response.status === 429)
    return result("temporary_fail", "provider_rate_limited", "feishu bot HTTP 429");
  if (response.status >= 500) {
    return result("temporary_fail", "provider_5xx", `feishu bot HTTP ${response.status}`);
  }
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
