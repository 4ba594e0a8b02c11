import type { EachBatchHandler } from "kafkajs";
import type { IncomingMessage, Subscription } from "./bus.ts";
import type { KafkaBusOptions } from "./kafka-bus.ts";
import { textHeaders } from "./kafka-headers.ts";
import { whileHeartbeating } from "./kafka-heartbeat.ts";

/** Hands a partition's batch to the subscription in chunks, committing each chunk's offset once handled. */
export function batchHandler(
  { maxBatch, logger, onLag }: KafkaBusOptions,
  heartbeatEveryMs: number,
  subscription: Subscription,
  signal: AbortSignal,
): EachBatchHandler {
  return async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
    for (let start = 0; start < batch.messages.length; start += maxBatch) {
      if (!isRunning() || isStale() || signal.aborted) return;
      const chunk = batch.messages.slice(start, start + maxBatch);
      const incoming: IncomingMessage[] = chunk.map((message) => ({
        topic: batch.topic,
        partition: batch.partition,
        offset: message.offset,
        key: message.key === null ? null : message.key.toString("utf8"),
        value: message.value,
        headers: textHeaders(message.headers),
      }));
      // The offset is committed only after the handler's database writes have committed: a crash before
      // that redelivers these messages, and the handler's guards make a redelivery harmless.
      const handled = await whileHeartbeating(heartbeatEveryMs, heartbeat, logger, () =>
        subscription.handleMessages(incoming, signal),
      );
      if (!handled) return;
      const last = chunk[chunk.length - 1];
      if (last) resolveOffset(last.offset);
      await commitOffsetsIfNecessary();
      if (last) onLag?.(batch.topic, batch.partition, Number(batch.highWatermark) - Number(last.offset) - 1);
      await heartbeat();
    }
  };
}
