import { randomBytes } from "node:crypto";
import {
  type Attributes,
  type Context,
  context,
  createTraceState,
  isSpanContextValid,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
} from "@opentelemetry/api";

/**
 * W3C trace context through the OpenTelemetry API only: with no SDK started (no OTEL_* key set) the tracer is
 * the API's no-op one, spans cost nothing, and there is no context manager, so the active context stays empty.
 * What is carried explicitly (the outbox envelope's `traceparent`, the Kafka headers, a delivery job's trace)
 * is passed on as text either way. The `traceparent` codec is ours (a fixed format), so carrying a trace
 * needs no propagator to be registered.
 */
export interface TraceCarrier {
  readonly traceparent: string;
  readonly tracestate?: string;
}

export { SpanKind };

const TRACER = "smartflow-notification";

let sdkStarted = false;

/** Called by the SDK's adapter once it registered a tracer provider: a bare trace id is worth continuing. */
export function markTracingStarted(): void {
  sdkStarted = true;
}

/** Whether an SDK was started (else every span is the API's no-op one). */
export function tracingStarted(): boolean {
  return sdkStarted;
}
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The span context a `traceparent` names (remote), or undefined when it is not a valid one. */
export function parseTraceparent(value: string | undefined, tracestate?: string): SpanContext | undefined {
  const match = TRACEPARENT.exec(value?.trim().toLowerCase() ?? "");
  if (!match) return undefined;
  const [, version, traceId = "", spanId = "", flags = "00", rest] = match;
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  const spanContext: SpanContext = {
    traceId,
    spanId,
    traceFlags: Number.parseInt(flags, 16) & TraceFlags.SAMPLED,
    isRemote: true,
    ...(tracestate?.trim() ? { traceState: createTraceState(tracestate.trim()) } : {}),
  };
  return isSpanContextValid(spanContext) ? spanContext : undefined;
}

export function formatTraceparent(spanContext: SpanContext): string {
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, "0");
  return `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
}

/** The carrier of a context's span (the active one by default), or undefined when it has none. */
export function carrierOf(from: Context = context.active()): TraceCarrier | undefined {
  const spanContext = trace.getSpanContext(from);
  if (!spanContext || !isSpanContextValid(spanContext)) return undefined;
  const tracestate = spanContext.traceState?.serialize();
  return { traceparent: formatTraceparent(spanContext), ...(tracestate ? { tracestate } : {}) };
}

/** A context whose (remote) parent is the carrier's, or undefined when the carrier names no valid span. */
export function contextOfCarrier(carrier: TraceCarrier | undefined): Context | undefined {
  const spanContext = parseTraceparent(carrier?.traceparent, carrier?.tracestate);
  return spanContext ? trace.setSpanContext(ROOT_CONTEXT, spanContext) : undefined;
}

/**
 * A context continuing a bare trace id, as SmartFlow's Go producers write one in a payload's `trace_id`:
 * used only when it is a W3C trace id (32 hex digits, not all zero). There is no parent span id to continue,
 * so the parent is a made-up remote span of that trace, sampled (the producer asked for the trace). Without
 * an SDK there is nothing to continue it into: undefined, at no cost.
 */
export function contextOfTraceId(traceId: string | undefined): Context | undefined {
  if (!sdkStarted) return undefined;
  const id = traceId?.trim().toLowerCase() ?? "";
  if (!/^[0-9a-f]{32}$/.test(id)) return undefined;
  const spanContext: SpanContext = {
    traceId: id,
    spanId: randomBytes(8).toString("hex"),
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  };
  return isSpanContextValid(spanContext) ? trace.setSpanContext(ROOT_CONTEXT, spanContext) : undefined;
}

/** Runs `fn` with `parent` as the active context (the active one stays when it is undefined). */
export function withContext<T>(parent: Context | undefined, fn: () => T): T {
  return parent ? context.with(parent, fn) : fn();
}

export interface SpanOptions {
  readonly kind: SpanKind;
  readonly attributes?: Attributes;
  /** The parent; the active context when absent. A context without a span starts a new trace. */
  readonly parent?: Context;
}

/**
 * Runs `fn` in a new span (active while it runs), ended when `fn` settles; a rejection is recorded on it as
 * an error. With no SDK started this is the API's no-op span.
 */
export async function inSpan<T>(
  name: string,
  options: SpanOptions,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = options.parent ?? context.active();
  const span = trace
    .getTracer(TRACER)
    .startSpan(
      name,
      { kind: options.kind, ...(options.attributes ? { attributes: options.attributes } : {}) },
      parent,
    );
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (error) {
    markFailed(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** Starts a span the caller ends (for a span that outlives one function call). */
export function startSpan(name: string, options: SpanOptions): Span {
  return trace
    .getTracer(TRACER)
    .startSpan(
      name,
      { kind: options.kind, ...(options.attributes ? { attributes: options.attributes } : {}) },
      options.parent ?? context.active(),
    );
}

/** The context in which `span` is the active one, child of `parent`. */
export function contextWithSpan(span: Span, parent: Context = ROOT_CONTEXT): Context {
  return trace.setSpan(parent, span);
}

export function markFailed(span: Span, error: unknown): void {
  if (error instanceof Error) span.recordException(error);
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
}

/** `trace_id` and `span_id` of the active span, for a log line; undefined when there is none. */
export function activeTraceFields(): { trace_id: string; span_id: string } | undefined {
  const spanContext = trace.getSpanContext(context.active());
  if (!spanContext || !isSpanContextValid(spanContext)) return undefined;
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}
