import type { Clock } from "../lib/clock.ts";
import { createCoalescingLoader } from "../lib/coalescing-loader.ts";
import { AppError } from "../lib/errors.ts";
import type { ChannelUpsert } from "./channel.ts";
import { sendTestMessage, TEST_TRACE_ID } from "./channel-test-message.ts";
import { type ChannelView, channelView, unconfiguredView } from "./channel-view.ts";
import { isUserId, type UserId } from "./ids.ts";
import type { ChannelStore } from "./ports/channel-store.ts";
import type { DeliveryProvider, SendOutcome } from "./ports/delivery-provider.ts";
import type { WebhookPolicy } from "./ports/webhook-policy.ts";

export interface SaveChannel {
  readonly userId: UserId;
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
  readonly outcome: SendOutcome;
  readonly message: string;
  readonly traceId: string;
  readonly sentAt: Date;
  readonly skipped: boolean;
  readonly provider: string;
}

export interface ChannelService {
  get(userId: UserId): Promise<ChannelView>;
  save(input: SaveChannel): Promise<ChannelView>;
  delete(userId: UserId): Promise<void>;
  test(userId: UserId, signal?: AbortSignal): Promise<TestResultView>;
}

/** A user id that is not positive is not a user (SmartFlow: unauthorized, 40014). */
function requireUser(userId: UserId) {
  if (!isUserId(userId)) {
    throw new AppError("unauthenticated", "user_id must be a positive integer", {
      field: "user_id",
      reason: "unauthorized",
    });
  }
}

const invalid = (
  message: string,
  field: string,
  reason: "missing_param" | "wrong_param_type" | "param_too_long",
) => new AppError("invalid_argument", message, { field, reason });

/** The longest bearer token or signing secret accepted, in characters (Feishu's are tens of characters). */
export const MAX_SECRET_CHARS = 1_024;

/** Refuses a secret longer than `MAX_SECRET_CHARS` code points (SmartFlow's ParamTooLong, 40006). */
function checkSecretLength(value: string, field: string) {
  if (value.length > MAX_SECRET_CHARS && Array.from(value).length > MAX_SECRET_CHARS) {
    throw invalid(`${field} must be at most ${MAX_SECRET_CHARS} characters`, field, "param_too_long");
  }
}

/** SmartFlow's `sv/channel.go`: the user's channel, got, saved, deleted and tested. */
export function createChannelService(deps: {
  readonly channels: ChannelStore;
  readonly provider: DeliveryProvider;
  readonly policy: WebhookPolicy;
  readonly clock: Clock;
}): ChannelService {
  const { channels, provider, policy, clock } = deps;
  // Concurrent Get calls (the gateway's hot path) share one `WHERE user_id IN (…)` query, and the calls for
  // one user in it share one view (so the API can build and encode its answer once per read, not per call).
  const loader = createCoalescingLoader(async (userIds: readonly UserId[]) => {
    const views = new Map<UserId, ChannelView>();
    for (const [userId, channel] of await channels.getMany(userIds)) {
      views.set(userId, channelView(channel, policy));
    }
    return views;
  });

  async function get(userId: UserId): Promise<ChannelView> {
    requireUser(userId);
    return (await loader.load(userId)) ?? unconfiguredView;
  }

  return {
    get,

    /** Validates and stores the channel (see `checkedChannel`), then returns it as `get` does. */
    async save(input) {
      requireUser(input.userId);
      await channels.upsert(await checkedChannel(channels, policy, input), clock.now());
      return get(input.userId);
    },

    /** Hard delete; idempotent. */
    async delete(userId) {
      requireUser(userId);
      await channels.delete(userId);
    },

    /** Sends SmartFlow's fixed test message through the channel and records the result on it. */
    async test(userId, signal) {
      requireUser(userId);
      const now = clock.now();
      const { result, status, message } = await sendTestMessage(
        await channels.get(userId),
        provider,
        userId,
        signal,
      );
      await channels.recordTest(userId, status, message, now);
      return {
        channel: await get(userId),
        status,
        outcome: result.outcome,
        message,
        traceId: TEST_TRACE_ID,
        sentAt: now,
        skipped: result.outcome === "skipped",
        provider: "feishu",
      };
    },
  };
}

/**
 * The channel a save stores. Differences from the original: Lark and group-bot URLs are accepted and the
 * whole URL is checked (weakness 20); a bearer save without a token keeps the stored token instead of failing
 * (the gateway never sees the token to resend it); a token is not stored for `auth_type` none; a group bot's
 * signing secret is kept unless the save names one.
 */
async function checkedChannel(
  channels: ChannelStore,
  policy: WebhookPolicy,
  input: SaveChannel,
): Promise<ChannelUpsert> {
  const url = input.webhookUrl.trim();
  if (!url) throw invalid("webhook_url is required", "webhook_url", "missing_param");
  const parsed = policy.parse(url);
  if (!parsed.ok) throw invalid(parsed.reason, "webhook_url", "wrong_param_type");
  const authType = input.authType.trim().toLowerCase() === "bearer" ? "bearer" : "none";
  checkSecretLength(input.bearerToken.trim(), "bearer_token");
  if (input.signingSecret !== undefined) checkSecretLength(input.signingSecret.trim(), "signing_secret");
  const existing = await channels.get(input.userId);
  const bearerToken = authType === "bearer" ? input.bearerToken.trim() || existing?.bearerToken || "" : "";
  if (authType === "bearer" && !bearerToken) {
    throw invalid("bearer_token is required when auth_type is bearer", "bearer_token", "missing_param");
  }
  const signingSecret =
    parsed.kind === "group_bot" ? (input.signingSecret ?? existing?.signingSecret ?? "").trim() : "";
  const { userId, enabled } = input;
  return {
    userId,
    enabled,
    webhookUrl: parsed.url,
    authType,
    bearerToken,
    webhookKind: parsed.kind,
    signingSecret,
  };
}
