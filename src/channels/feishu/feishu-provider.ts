import type { DeliveryProvider } from "../../notifications/ports/delivery-provider.ts";
import type { FeishuContext } from "./feishu-request.ts";
import { sendFlowTrigger } from "./flow-trigger.ts";
import { sendGroupBot } from "./group-bot.ts";
import { maskWebhookUrl, parseWebhookUrl } from "./webhook-url.ts";

export interface FeishuProviderOptions extends FeishuContext {
  readonly allowedHosts: readonly string[];
}

/**
 * Feishu delivery, one protocol per webhook kind, chosen by the URL (checked again at every send: a row
 * written by hand or before the rules changed is `invalid_url`, never posted): Flow triggers
 * (flow-trigger.ts) and group custom bots (group-bot.ts).
 */
export function createFeishuProvider(options: FeishuProviderOptions): DeliveryProvider {
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
        ? sendGroupBot(options, destination, request, signal)
        : sendFlowTrigger(options, destination, request, signal);
    },
  };
}
