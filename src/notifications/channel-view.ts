import { CHANNEL_NAME, type Channel } from "./channel.ts";
import type { WebhookKind, WebhookPolicy } from "./ports/webhook-policy.ts";

/** What the API returns about a channel: never the URL or a secret, only their masks and presence. */
export interface ChannelView {
  readonly channel: string;
  readonly enabled: boolean;
  readonly configured: boolean;
  readonly webhookUrlMask: string;
  readonly authType: string;
  readonly hasBearerToken: boolean;
  readonly lastTestStatus: string;
  readonly lastTestError: string;
  readonly lastTestAt: Date | null;
  /** "" when unconfigured. */
  readonly webhookKind: WebhookKind | "";
  readonly hasSigningSecret: boolean;
}

/** SmartFlow's answer for a user without a channel. */
export const unconfiguredView: ChannelView = {
  channel: CHANNEL_NAME,
  enabled: false,
  configured: false,
  webhookUrlMask: "",
  authType: "none",
  hasBearerToken: false,
  lastTestStatus: "",
  lastTestError: "",
  lastTestAt: null,
  webhookKind: "",
  hasSigningSecret: false,
};

export function channelView(channel: Channel | undefined, policy: WebhookPolicy): ChannelView {
  if (!channel) return unconfiguredView;
  return {
    channel: CHANNEL_NAME,
    enabled: channel.enabled,
    configured: channel.webhookUrl.trim() !== "",
    webhookUrlMask: policy.mask(channel.webhookUrl),
    authType: channel.authType,
    hasBearerToken: channel.bearerToken !== "",
    lastTestStatus: channel.lastTestStatus,
    lastTestError: channel.lastTestError,
    lastTestAt: channel.lastTestAt,
    webhookKind: channel.webhookKind,
    hasSigningSecret: channel.signingSecret !== "",
  };
}
