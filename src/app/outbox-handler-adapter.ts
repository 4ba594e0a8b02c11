import type { FeishuRequestedHandler } from "../notifications/feishu-requested-handler.ts";
import {
  FEISHU_REQUESTED_EVENT,
  FEISHU_REQUESTED_VERSIONS,
  payloadTraceId,
} from "../notifications/feishu-requested-payload.ts";
import type { OutboxHandler } from "../outbox/outbox-handler.ts";

/**
 * Serves the domain's `notification.feishu.requested` handler to the outbox consumer: the consumer checks
 * the event type and version, the domain sees only each event's outbox id and payload.
 */
export function feishuRequestedOutboxHandler(handler: FeishuRequestedHandler): OutboxHandler {
  return {
    eventType: FEISHU_REQUESTED_EVENT,
    versions: FEISHU_REQUESTED_VERSIONS,
    traceIdOf: payloadTraceId,
    handleEvents: (events) =>
      handler.handle(
        events.map(({ outboxId, payload, trace }) => ({ outboxId, payload, ...(trace ? { trace } : {}) })),
      ),
  };
}
