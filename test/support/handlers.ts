import { FEISHU_REQUESTED_EVENT } from "../../src/notifications/feishu-requested-payload.ts";
import { type OutboxEvent, perEventHandler } from "../../src/outbox/outbox-handler.ts";
import { requestedPayload } from "./delivery.ts";

/** A handler for the notification event type that records what it was given and behaves as told. */
export function recordingHandler(
  behaviour: (event: OutboxEvent, call: number) => Promise<void> = () => Promise.resolve(),
) {
  const calls: OutboxEvent[] = [];
  const handler = perEventHandler({
    eventType: FEISHU_REQUESTED_EVENT,
    versions: ["", "1", "v1"],
    concurrency: 64,
    async handle(event) {
      calls.push(event);
      await behaviour(event, calls.length);
    },
  });
  return { calls, handler };
}

/** A valid notification.feishu.requested payload (one dedupe bucket per user). */
export function feishuPayload(userId: number, previewId: string) {
  return requestedPayload(userId, previewId, `${userId}:unfinished_feedback:2026-03-02T10:30:00+08:00`);
}
