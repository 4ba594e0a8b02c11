import { type JsonObjectText, parseJsonObject } from "../lib/json-int64.ts";

/**
 * The two JSON shapes of SmartFlow's outbox, kept byte-compatible (reference §4.1 and §4.5):
 * - the row envelope stored in `payload`: `{event_id?, event_type, event_version?, aggregate_id?, payload}`;
 * - the Kafka message value: `{outbox_id, event_id?, event_type, event_version?, aggregate_id?, payload,
 *   service_name?}`, keyed by the row's `message_key`.
 * The row envelope may also hold the producer's W3C trace context (`traceparent`, `tracestate`): fields this
 * service adds, which SmartFlow's Go decoders ignore; the relay carries them as the Kafka message's headers.
 * The payload is carried as its exact JSON text (Go's `json.RawMessage`), never parsed and written again:
 * that would round its 64-bit ids past 2^53.
 */
export interface RowEnvelope {
  readonly eventId: string;
  readonly eventType: string;
  readonly eventVersion: string;
  readonly aggregateId: string;
  /** The event payload as raw JSON text. */
  readonly payload: string;
  /** The producer's trace context, when it had one. */
  readonly traceparent?: string;
  readonly tracestate?: string;
}

export interface KafkaEnvelope extends RowEnvelope {
  readonly outboxId: number;
  readonly serviceName: string;
}

export type Decoded<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reason: string; readonly outboxId?: number };

export function encodeRowEnvelope(envelope: RowEnvelope): string {
  return `{${[
    ...optionalField("event_id", envelope.eventId),
    `"event_type":${JSON.stringify(envelope.eventType)}`,
    ...optionalField("event_version", envelope.eventVersion),
    ...optionalField("aggregate_id", envelope.aggregateId),
    `"payload":${envelope.payload}`,
    ...optionalField("traceparent", envelope.traceparent ?? ""),
    ...optionalField("tracestate", envelope.tracestate ?? ""),
  ].join(",")}}`;
}

export function decodeRowEnvelope(text: string): Decoded<RowEnvelope> {
  const parsed = parseObject(text);
  if (!parsed.ok) return parsed;
  const raw = parsed.value.value;
  const eventType = stringField(raw, "event_type");
  if (!eventType) return { ok: false, reason: "outbox envelope has no event_type" };
  if (raw.payload === undefined || raw.payload === null) {
    return { ok: false, reason: "outbox envelope has no payload" };
  }
  return {
    ok: true,
    value: {
      eventId: stringField(raw, "event_id"),
      eventType,
      eventVersion: stringField(raw, "event_version"),
      aggregateId: stringField(raw, "aggregate_id"),
      payload: parsed.value.raw("payload") ?? "null",
      ...traceFields(raw),
    },
  };
}

function traceFields(raw: Readonly<Record<string, unknown>>): { traceparent?: string; tracestate?: string } {
  const traceparent = stringField(raw, "traceparent");
  if (!traceparent) return {};
  const tracestate = stringField(raw, "tracestate");
  return tracestate ? { traceparent, tracestate } : { traceparent };
}

export function encodeKafkaEnvelope(envelope: KafkaEnvelope): string {
  return `{${[
    `"outbox_id":${envelope.outboxId}`,
    ...optionalField("event_id", envelope.eventId),
    `"event_type":${JSON.stringify(envelope.eventType)}`,
    ...optionalField("event_version", envelope.eventVersion),
    ...optionalField("aggregate_id", envelope.aggregateId),
    `"payload":${envelope.payload}`,
    ...optionalField("service_name", envelope.serviceName),
  ].join(",")}}`;
}

export function decodeKafkaEnvelope(value: Buffer | string | null): Decoded<KafkaEnvelope> {
  if (value === null) return { ok: false, reason: "message has no value" };
  const parsed = parseObject(typeof value === "string" ? value : value.toString("utf8"));
  if (!parsed.ok) return parsed;
  const raw = parsed.value.value;
  const outboxId = raw.outbox_id;
  if (typeof outboxId !== "number" || !Number.isSafeInteger(outboxId) || outboxId <= 0) {
    return { ok: false, reason: `message has no valid outbox_id (${JSON.stringify(outboxId ?? null)})` };
  }
  const eventType = stringField(raw, "event_type");
  if (!eventType) return { ok: false, reason: "message has no event_type", outboxId };
  if (raw.payload === undefined || raw.payload === null) {
    return { ok: false, reason: "message has no payload", outboxId };
  }
  return {
    ok: true,
    value: {
      outboxId,
      eventId: stringField(raw, "event_id"),
      eventType,
      eventVersion: stringField(raw, "event_version"),
      aggregateId: stringField(raw, "aggregate_id"),
      payload: parsed.value.raw("payload") ?? "null",
      serviceName: stringField(raw, "service_name"),
    },
  };
}

function optionalField(name: string, value: string): string[] {
  return value === "" ? [] : [`"${name}":${JSON.stringify(value)}`];
}

function parseObject(text: string): Decoded<JsonObjectText> {
  try {
    return { ok: true, value: parseJsonObject(text) };
  } catch (error) {
    return error instanceof SyntaxError
      ? { ok: false, reason: `invalid JSON: ${error.message}` }
      : { ok: false, reason: "envelope is not a JSON object" };
  }
}

function stringField(raw: Readonly<Record<string, unknown>>, name: string): string {
  const value = raw[name];
  if (typeof value === "string") return value.trim();
  if (typeof value === "number") return String(value);
  return "";
}
