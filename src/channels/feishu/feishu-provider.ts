import type { DeliveryProvider } from "../../notifications/ports/delivery-provider.ts";
import type { WebhookPolicy } from "../../notifications/ports/webhook-policy.ts";
import type { FeishuContext } from "./feishu-request.ts";
import { sendFlowTrigger } from "./flow-trigger.ts";
import { sendGroupBot } from "./group-bot.ts";

export interface FeishuProviderOptions extends FeishuContext {
  /** The URL rules (webhook-url.ts); a send checks the stored URL with `parseStored`. */
  readonly policy: WebhookPolicy;
}

/**
 * Feishu delivery, one protocol per webhook kind, chosen by the URL (checked again at every send, leniently:
 * a row SmartFlow's Go service saved is posted to as Go posted to it, and a URL that is unsafe is
 * `invalid_url`, never posted): Flow triggers (flow-trigger.ts) and group custom bots (group-bot.ts).
 */
export function createFeishuProvider(options: FeishuProviderOptions): DeliveryProvider {
  const { policy } = options;
  return {
    async send(destination, request, signal) {
      const parsed = policy.parseStored(destination.url);
      if (!parsed.ok) {
        return {
          outcome: "permanent_fail",
          errorCode: "invalid_url",
          errorMessage: parsed.reason,
          requestPayload: {
            notification_id: request.notificationId,
            user_id: request.userId,
            webhook: policy.mask(destination.url),
          },
          responsePayload: null,
        };
      }
      const target = { ...destination, url: parsed.url };
      return parsed.kind === "group_bot"
        ? sendGroupBot(options, target, request, signal)
        : sendFlowTrigger(options, target, request, signal);
    },
  };
}
