import { create } from "@bufbuild/protobuf";
import {
  type ChannelResponse,
  ChannelResponseSchema,
  type DeleteFeishuWebhookRequest,
  type GetFeishuWebhookRequest,
  Notification,
  type SaveFeishuWebhookRequest,
  StatusResponseSchema,
  type TestFeishuWebhookRequest,
  TestResultSchema,
} from "../gen/smartflow/notification/notification_pb.ts";
import type { ChannelService } from "../notifications/channel-service.ts";
import type { ChannelView } from "../notifications/channel-view.ts";
import { throwIfAborted } from "./error-mapping.ts";
import type { ServiceBinding } from "./rpc-binding.ts";

/** Starts a step only while the call is still wanted (the transport answers the deadline itself). */
function stepIn<T>(signal: AbortSignal, step: () => Promise<T>): Promise<T> {
  throwIfAborted(signal);
  return step();
}

/**
 * `smartflow.notification.Notification`, with the original's semantics (reference §2 and §6.9); the channel
 * response also says the webhook's kind and whether a signing secret is set (new fields, new numbers).
 */
export function notificationBinding(channels: ChannelService, requiresToken: boolean): ServiceBinding {
  return {
    service: Notification,
    errorStyle: "legacy",
    requiresToken,
    handlers: {
      // One read, nothing to spare by checking the signal first (the transport answers the deadline); not
      // touching it lets the fast path skip building one per call.
      getFeishuWebhook: async (request) => {
        const { userId } = request as GetFeishuWebhookRequest;
        return channelResponse(await channels.get(userId));
      },
      saveFeishuWebhook: async (request, { signal }) => {
        const r = request as SaveFeishuWebhookRequest;
        const view = await stepIn(signal, () =>
          channels.save({
            userId: r.userId,
            enabled: r.enabled,
            webhookUrl: r.webhookUrl,
            authType: r.authType,
            bearerToken: r.bearerToken,
            ...(r.signingSecret === undefined ? {} : { signingSecret: r.signingSecret }),
          }),
        );
        return channelResponse(view);
      },
      deleteFeishuWebhook: async (request, { signal }) => {
        const { userId } = request as DeleteFeishuWebhookRequest;
        await stepIn(signal, () => channels.delete(userId));
        return create(StatusResponseSchema);
      },
      testFeishuWebhook: async (request, { signal }) => {
        const { userId } = request as TestFeishuWebhookRequest;
        const result = await stepIn(signal, () => channels.test(userId, signal));
        return create(TestResultSchema, {
          channel: channelResponse(result.channel),
          status: result.status,
          outcome: result.outcome,
          message: result.message,
          traceId: result.traceId,
          sentAtUnixNano: unixNano(result.sentAt),
          skipped: result.skipped,
          provider: result.provider,
        });
      },
    },
  };
}

function unixNano(date: Date | null): bigint {
  return date ? BigInt(date.getTime()) * 1_000_000n : 0n;
}

/**
 * The answer for a view, built once per view: the calls that one read served share it (and the fast path
 * encodes it once). Answers are never changed after they are built.
 */
const responses = new WeakMap<ChannelView, ChannelResponse>();

function channelResponse(view: ChannelView): ChannelResponse {
  let response = responses.get(view);
  if (!response) {
    response = buildChannelResponse(view);
    responses.set(view, response);
  }
  return response;
}

function buildChannelResponse(view: ChannelView): ChannelResponse {
  return create(ChannelResponseSchema, {
    channel: view.channel,
    enabled: view.enabled,
    configured: view.configured,
    webhookUrlMask: view.webhookUrlMask,
    authType: view.authType,
    hasBearerToken: view.hasBearerToken,
    lastTestStatus: view.lastTestStatus,
    lastTestError: view.lastTestError,
    lastTestAtUnixNano: unixNano(view.lastTestAt),
    webhookKind: view.webhookKind,
    hasSigningSecret: view.hasSigningSecret,
  });
}
