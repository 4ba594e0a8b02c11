import type { OutboxEvent, OutboxHandler } from "../../src/outbox/outbox-consumer.ts";
import { FEISHU_REQUESTED_EVENT } from "../../src/outbox/routes.ts";

/** A handler for the notification event type that records what it was given and behaves as told. */
export function recordingHandler(
  behaviour: (event: OutboxEvent, call: number) => Promise<void> = () => Promise.resolve(),
) {
  const calls: OutboxEvent[] = [];
  const handler: OutboxHandler = {
    eventType: FEISHU_REQUESTED_EVENT,
    versions: ["", "1", "v1"],
    async handle(event) {
      calls.push(event);
      await behaviour(event, calls.length);
    },
  };
  return { calls, handler };
}

export function feishuPayload(userId: number, previewId: string) {
  return {
    user_id: userId,
    trigger_id: `ast_${previewId}`,
    preview_id: previewId,
    trigger_type: "unfinished_feedback",
    target_type: "task",
    target_id: 7,
    dedupe_key: `${userId}:unfinished_feedback:2026-03-02T10:30:00+08:00`,
    target_url: `/assistant/${previewId}`,
    summary_text: "明天上午的任务需要调整",
    requested_at: "2026-03-02T10:41:00+08:00",
  };
}
