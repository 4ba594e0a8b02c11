import { maskWebhookUrl, parseWebhookUrl } from "../channels/feishu/webhook-url.ts";
import type { Clock } from "../lib/clock.ts";
import { createCoalescingLoader } from "../lib/coalescing-loader.ts";
import { AppError } from "../lib/errors.ts";
import { CHANNEL_NAME, type ChannelRow, type ChannelStore } from "./channel-store.ts";
import type { DeliveryChannel, SendResult, WebhookKind } from "./delivery-channel.ts";

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

export interface SaveChannel {
  readonly userId: number;
  readonly enabled: boolean;
  readonly webhookUrl: string;
  readonly authType: string;
  readonly bearerToken: string;
  /** Group bots only. `undefined` keeps the stored secret; "" removes it. */
  readonly signingSecret?: string;
}

export interface TestResultView {
  readonly channel: ChannelView;
  readonly status: "success" | "failed";
  readonly outcome: SendResult["outcome"];
  readonly message: string;
  readonly traceId: string;
  readonly sentAt: Date;
  readonly skipped: boolean;
  readonly provider: string;
}

const unauthorized = () =>
  new AppError("unauthenticated", "user_id must be a positive integer", {
    field: "user_id",
    reason: "unauthorized",
  });

/** SmartFlow's `sv/channel.go`, with weakness 20 fixed (see `save`). */
export function createChannelService(deps: {
  readonly channels: ChannelStore;
  readonly provider: DeliveryChannel;
  readonly clock: Clock;
  readonly allowedHosts: readonly string[];
}) {
  const { channels, provider, clock } = deps;
  // Concurrent Get calls (the gateway's hot path) share one `WHERE user_id IN (…)` query.
  const loader = createCoalescingLoader((userIds: readonly number[]) => channels.getMany(userIds));

  const view = (row: ChannelRow | undefined): ChannelView =>
    row
      ? {
          channel: CHANNEL_NAME,
          enabled: row.enabled,
          configured: row.webhookUrl.trim() !== "",
          webhookUrlMask: maskWebhookUrl(row.webhookUrl),
          authType: row.authType,
          hasBearerToken: row.bearerToken !== "",
          lastTestStatus: row.lastTestStatus,
          lastTestError: row.lastTestError,
          lastTestAt: row.lastTestAt,
          webhookKind: row.webhookKind,
          hasSigningSecret: row.signingSecret !== "",
        }
      : {
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

  async function get(userId: number): Promise<ChannelView> {
    if (userId <= 0) throw unauthorized();
    return view(await loader.load(userId));
  }

  return {
    get,

    /**
     * Validates and stores the channel, then returns it as `get` does. Differences from the original:
     * Lark and group-bot URLs are accepted and the whole URL is checked (weakness 20); a bearer save without
     * a token keeps the stored token instead of failing (the gateway never sees the token to resend it); a
     * token is not stored for `auth_type` none.
     */
    async save(input: SaveChannel): Promise<ChannelView> {
      if (input.userId <= 0) throw unauthorized();
      const url = input.webhookUrl.trim();
      if (!url) {
        throw new AppError("invalid_argument", "webhook_url is required", {
          field: "webhook_url",
          reason: "missing_param",
        });
      }
      const parsed = parseWebhookUrl(url, deps.allowedHosts);
      if (!parsed.ok) {
        throw new AppError("invalid_argument", parsed.reason, {
          field: "webhook_url",
          reason: "wrong_param_type",
        });
      }
      const authType = input.authType.trim().toLowerCase() === "bearer" ? "bearer" : "none";
      const existing = await channels.get(input.userId);
      let bearerToken = "";
      if (authType === "bearer") {
        bearerToken = input.bearerToken.trim() || existing?.bearerToken || "";
        if (!bearerToken) {
          throw new AppError("invalid_argument", "bearer_token is required when auth_type is bearer", {
            field: "bearer_token",
            reason: "missing_param",
          });
        }
      }
      const signingSecret =
        parsed.kind === "group_bot" ? (input.signingSecret ?? existing?.signingSecret ?? "").trim() : "";
      await channels.upsert(
        {
          userId: input.userId,
          enabled: input.enabled,
          webhookUrl: parsed.url,
          authType,
          bearerToken,
          webhookKind: parsed.kind,
          signingSecret,
        },
        clock.now(),
      );
      return get(input.userId);
    },

    /** Hard delete; idempotent. */
    async delete(userId: number): Promise<void> {
      if (userId <= 0) throw unauthorized();
      await channels.delete(userId);
    },

    /** Sends SmartFlow's fixed test message through the channel and records the result on it. */
    async test(userId: number, signal?: AbortSignal): Promise<TestResultView> {
      if (userId <= 0) throw unauthorized();
      const row = await channels.get(userId);
      const now = clock.now();
      let result: SendResult;
      if (!row?.enabled || !row.webhookUrl.trim()) {
        result = {
          outcome: "skipped",
          errorCode: "recipient_missing",
          requestPayload: null,
          responsePayload: null,
        };
      } else {
        result = await provider.send(
          {
            kind: row.webhookKind,
            url: row.webhookUrl,
            authType: row.authType,
            bearerToken: row.bearerToken,
            signingSecret: row.signingSecret,
          },
          {
            notificationId: 0,
            userId,
            triggerId: "ast_test_webhook",
            previewId: "asp_test_webhook",
            triggerType: "manual_test",
            targetType: "notification_channel",
            targetId: 0,
            targetUrl: "/assistant/00000000-0000-0000-0000-000000000000",
            messageText: "这是一条 SmartFlow 飞书 Webhook 测试消息。",
            fallbackUsed: false,
            traceId: "trace_feishu_webhook_test",
            attemptCount: 1,
          },
          signal,
        );
      }
      const status = result.outcome === "success" ? "success" : "failed";
      const message =
        result.outcome === "success"
          ? ""
          : result.errorMessage || (result.outcome === "skipped" ? "飞书 webhook 未配置或未启用" : "");
      await channels.recordTest(userId, status, message, now);
      return {
        channel: await get(userId),
        status,
        outcome: result.outcome,
        message,
        traceId: "trace_feishu_webhook_test",
        sentAt: now,
        skipped: result.outcome === "skipped",
        provider: "feishu",
      };
    },
  };
}

export type ChannelService = ReturnType<typeof createChannelService>;
