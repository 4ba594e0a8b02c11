import {
  carrierOf,
  contextOfCarrier,
  contextOfTraceId,
  contextWithSpan,
  markFailed,
  SpanKind,
  startSpan,
  type TraceCarrier,
  tracingStarted,
} from "../lib/trace-context.ts";
import type { OutboxHandler } from "./outbox-handler.ts";

/** Where a handled message came from, for its consumer span. */
export interface MessageOrigin {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly headers: Readonly<Record<string, string>>;
}

export interface ConsumeSpan {
  /** The trace the handler continues: this span's context. */
  readonly trace: TraceCarrier | undefined;
  end(failure: string | undefined): void;
}

/**
 * The consumer span of one message, child of the producer's context: the message's `traceparent` header,
 * else a W3C trace id its handler finds in the payload (SmartFlow's Go producers write `trace_id` there),
 * else a new trace. With no SDK started the span is the API's no-op one, which passes the parent on as it is.
 */
export function startConsumeSpan(
  origin: MessageOrigin,
  outboxId: number,
  payload: string,
  handler: OutboxHandler | undefined,
): ConsumeSpan {
  const parent =
    contextOfCarrier(
      origin.headers.traceparent
        ? { traceparent: origin.headers.traceparent, tracestate: origin.headers.tracestate ?? "" }
        : undefined,
    ) ?? (tracingStarted() ? contextOfTraceId(handler?.traceIdOf?.(payload)) : undefined);
  const span = startSpan(`${origin.topic} process`, {
    kind: SpanKind.CONSUMER,
    attributes: {
      "messaging.system": "kafka",
      "messaging.operation.type": "process",
      "messaging.destination.name": origin.topic,
      "messaging.destination.partition.id": String(origin.partition),
      "messaging.kafka.offset": Number(origin.offset),
      "smartflow.outbox_id": outboxId,
    },
    ...(parent ? { parent } : {}),
  });
  return {
    trace: carrierOf(contextWithSpan(span, parent)),
    end(failure) {
      if (failure !== undefined) markFailed(span, new Error(failure));
      span.end();
    },
  };
}
