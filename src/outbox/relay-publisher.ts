import type { Clock } from "../lib/clock.ts";
import { AppError, describeError } from "../lib/errors.ts";
import type { EventHub } from "../lib/event-hub.ts";
import type { Logger } from "../lib/logger.ts";
import { TimeoutError, withTimeout } from "../lib/sleep.ts";
import type { MessageBus, OutgoingMessage } from "../messaging/bus.ts";
import { decodeRowEnvelope, encodeKafkaEnvelope, type RowEnvelope } from "./envelope.ts";
import type { OutboxEvents } from "./outbox-events.ts";
import type { ServiceRoute } from "./routes.ts";
import type { ClaimedRow, RelayStore } from "./store/relay-store.ts";

export type BatchResult = "ok" | "broker_unavailable";

export interface PublisherDeps {
  readonly store: RelayStore;
  readonly bus: MessageBus;
  readonly route: ServiceRoute;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly events: EventHub<OutboxEvents>;
  /** Each publish gets this long; a hung broker cannot stall the relay (fix 0.9.68 #3). */
  readonly publishTimeoutMs: number;
  /** OUTBOX_MAX_MESSAGE_BYTES: a larger message (key and value) is never published; its row is dead. */
  readonly maxMessageBytes?: number;
}

/** Below Kafka's default `message.max.bytes` (1 MiB), leaving room for the record's framing. */
export const DEFAULT_MAX_MESSAGE_BYTES = 900 * 1024;

interface TopicGroup {
  readonly topic: string;
  readonly rows: ClaimedRow[];
  readonly messages: OutgoingMessage[];
}

/**
 * Publishes a batch of claimed rows, one publish per topic, and settles each row. An undecodable row is dead
 * at once. A timeout or an unreachable broker puts the unpublished rows back untouched (they keep their retry
 * budget) and reports `broker_unavailable`; any other error counts against the rows, and a batch that fails
 * for one bad message is retried one message at a time, so only that row is charged.
 */
export async function publishClaimedRows(
  deps: PublisherDeps,
  rows: readonly ClaimedRow[],
): Promise<BatchResult> {
  const groups = await groupByTopic(deps, rows);
  for (const [index, group] of groups.entries()) {
    try {
      await publish(deps, group.topic, group.rows, group.messages);
    } catch (error) {
      if (isBrokerUnavailable(error)) {
        const unpublished = groups.slice(index).flatMap((g) => g.rows.map((row) => row.id));
        const reason = `broker unavailable: ${describeError(error)}`;
        await release(deps, unpublished, reason);
        deps.events.emit("relay:failed", { ids: unpublished, error: reason, brokerUnavailable: true });
        return "broker_unavailable";
      }
      if (group.rows.length === 1) {
        await failRows(deps, group.rows, error);
        continue;
      }
      if ((await publishOneByOne(deps, group)) === "broker_unavailable") {
        const rest = groups.slice(index + 1).flatMap((g) => g.rows.map((row) => row.id));
        await release(deps, rest, "broker unavailable");
        return "broker_unavailable";
      }
    }
  }
  return "ok";
}

/** Puts claimed rows back untouched (the broker is unreachable): they keep their retry budget. */
export function release(deps: PublisherDeps, ids: readonly number[], reason: string) {
  return settle(deps, () => deps.store.releaseClaimed(ids, reason, deps.clock.now()), "release claimed rows");
}

/** Encodes each row as the Kafka envelope, grouped by topic; undecodable or oversized rows are dead. */
async function groupByTopic(deps: PublisherDeps, rows: readonly ClaimedRow[]): Promise<TopicGroup[]> {
  const { route } = deps;
  const poison: { id: number; reason: string }[] = [];
  const byTopic = new Map<string, TopicGroup>();
  for (const row of rows) {
    const decoded = decodeRowEnvelope(row.payload);
    if (!decoded.ok) {
      poison.push({ id: row.id, reason: `cannot decode outbox envelope: ${decoded.reason}` });
      continue;
    }
    const envelope = decoded.value;
    const value = encodeKafkaEnvelope({
      ...envelope,
      outboxId: row.id,
      eventId: envelope.eventId || String(row.id),
      serviceName: row.serviceName.trim() || route.service,
    });
    const size = Buffer.byteLength(value) + Buffer.byteLength(row.messageKey);
    const limit = deps.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (size > limit) {
      poison.push({
        id: row.id,
        reason: `message too large to publish: ${size} bytes (key and value), over OUTBOX_MAX_MESSAGE_BYTES (${limit}); the broker would refuse it`,
      });
      continue;
    }
    const topic = row.topic.trim() || route.topic;
    let group = byTopic.get(topic);
    if (!group) {
      group = { topic, rows: [], messages: [] };
      byTopic.set(topic, group);
    }
    group.rows.push(row);
    group.messages.push({ key: row.messageKey, ...traceHeaders(envelope), value });
  }
  for (const { id, reason } of poison) {
    await settle(deps, () => deps.store.markDead([id], reason, deps.clock.now()), "mark dead");
  }
  if (poison.length > 0) {
    deps.events.emit("relay:dead", { ids: poison.map((p) => p.id), reason: poison[0]?.reason ?? "" });
  }
  return [...byTopic.values()];
}

/** The producer's trace context as the message's W3C headers (none for a row written without one). */
function traceHeaders({ traceparent, tracestate }: RowEnvelope): { headers?: Record<string, string> } {
  if (!traceparent) return {};
  return { headers: tracestate ? { traceparent, tracestate } : { traceparent } };
}

async function publishOneByOne(deps: PublisherDeps, group: TopicGroup): Promise<BatchResult> {
  for (const [i, row] of group.rows.entries()) {
    const message = group.messages[i];
    if (!message) continue;
    try {
      await publish(deps, group.topic, [row], [message]);
    } catch (error) {
      if (isBrokerUnavailable(error)) {
        const ids = group.rows.slice(i).map((r) => r.id);
        await release(deps, ids, `broker unavailable: ${describeError(error)}`);
        return "broker_unavailable";
      }
      await failRows(deps, [row], error);
    }
  }
  return "ok";
}

/**
 * Publishes rows' messages within the publish timeout, records the broker's acknowledgement and reports them
 * published. A failed acknowledgement write only means an early re-queue and a second copy in the topic,
 * which the consumer's row guard and the dedupe key absorb.
 */
async function publish(
  deps: PublisherDeps,
  topic: string,
  rows: readonly ClaimedRow[],
  messages: readonly OutgoingMessage[],
) {
  const timeoutMs = deps.publishTimeoutMs;
  const started = deps.clock.now().getTime();
  // The bus times out on its own (and retires its producer); this guards against a bus that does not.
  await withTimeout(deps.bus.publish(topic, messages, { timeoutMs }), timeoutMs, `publish to ${topic}`);
  const durationMs = deps.clock.now().getTime() - started;
  const ids = rows.map((row) => row.id);
  await settle(
    deps,
    () => deps.store.markPublished(ids, deps.clock.now()),
    "record the broker's acknowledgement",
  );
  deps.events.emit("relay:published", { ids, topic, durationMs });
}

async function failRows(deps: PublisherDeps, rows: readonly ClaimedRow[], error: unknown) {
  const { store, clock, logger, events } = deps;
  const reason = `publish failed: ${describeError(error)}`;
  const ids = rows.map((r) => r.id);
  logger.warn("outbox publish failed; rows will be retried", { ids, error: reason });
  const result = await settle(
    deps,
    () => store.failPublish(rows, reason, clock.now()),
    "record publish failure",
  );
  events.emit("relay:failed", { ids, error: reason, brokerUnavailable: false });
  if (result && result.exhausted > 0) events.emit("relay:dead", { ids, reason });
}

/** Runs a database write after a publish; a failure leaves rows claimed, for the sweeper. */
async function settle<T>(deps: PublisherDeps, write: () => Promise<T>, what: string): Promise<T | undefined> {
  try {
    return await write();
  } catch (error) {
    deps.logger.error(`outbox relay could not ${what}; the sweeper will re-queue the rows`, {
      error: describeError(error),
    });
    return undefined;
  }
}

/** A publish timeout counts as an unreachable broker: the rows are not charged for it. */
function isBrokerUnavailable(error: unknown): boolean {
  return error instanceof TimeoutError || AppError.is(error, "broker_unavailable");
}
