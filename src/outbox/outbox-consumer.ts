import { OutboxStatus } from "../db/schema.ts";
import { createBackoff, databaseRetry } from "../lib/backoff.ts";
import type { Clock } from "../lib/clock.ts";
import { mapByKey } from "../lib/concurrency.ts";
import { AppError, describeError } from "../lib/errors.ts";
import type { EventHub } from "../lib/event-hub.ts";
import type { Logger } from "../lib/logger.ts";
import { sleep } from "../lib/sleep.ts";
import type { IncomingMessage, MessageBus } from "../messaging/bus.ts";
import { decodeKafkaEnvelope, type KafkaEnvelope } from "./envelope.ts";
import type { OutboxEvents } from "./outbox-events.ts";
import type { OutboxStore, RowState } from "./outbox-store.ts";

/** An outbox event as a handler sees it. */
export interface OutboxEvent {
  readonly outboxId: number;
  readonly eventId: string;
  readonly eventType: string;
  readonly eventVersion: string;
  readonly aggregateId: string;
  /** The event payload as raw JSON text; the handler parses and validates it. */
  readonly payload: string;
  readonly messageKey: string;
  /** How many earlier attempts failed (the row's `retry_count`). */
  readonly retryCount: number;
}

/**
 * A handler's contract. Resolving → the row is marked `consumed`. Throwing:
 * - `AppError` with `retryable: false` (e.g. code `poison`) → the row is `dead`, with the message as reason;
 * - `AppError('deferred', …, {retryAfterMs})` → re-published after that delay, without spending the row's
 *   retry budget (weakness 8: a lease held elsewhere is nobody's failure);
 * - anything else → re-published with the outbox backoff, `dead` after `max_retry`.
 * The consumer applies the outcomes of a whole batch in one transaction, guarded on `status='published'`.
 */
export interface OutboxHandler {
  readonly eventType: string;
  /** Accepted `event_version` values, compared after trimming; others are `dead`. */
  readonly versions: readonly string[];
  handle(event: OutboxEvent, signal: AbortSignal): Promise<void>;
  /**
   * Optional: handles all of a batch's events of this type at once (to group database writes). Returns, per
   * event, `undefined` for success or the error `handle` would have thrown. Throwing fails every event.
   */
  handleBatch?(events: readonly OutboxEvent[], signal: AbortSignal): Promise<readonly unknown[]>;
}

export interface ConsumerOptions {
  /** Handlers running at once within a batch (events of one message key always run in order). */
  readonly concurrency: number;
}

type Decision =
  | { readonly kind: "consumed" }
  | { readonly kind: "dead"; readonly reason: string }
  | { readonly kind: "retry"; readonly reason: string }
  | { readonly kind: "deferred"; readonly reason: string; readonly delayMs: number };

export function createOutboxConsumer(deps: {
  readonly store: OutboxStore;
  readonly bus: MessageBus;
  readonly handlers: readonly OutboxHandler[];
  readonly clock: Clock;
  readonly logger: Logger;
  readonly events: EventHub<OutboxEvents>;
  readonly options: ConsumerOptions;
}) {
  const { store, bus, clock, logger, events, options } = deps;
  const route = store.route;
  const handlers = new Map(deps.handlers.map((handler) => [handler.eventType, handler]));

  /** Retries a database step until it succeeds; gives up only once shutdown began (returns undefined). */
  async function untilStored<T>(what: string, step: () => Promise<T>, signal: AbortSignal) {
    const backoff = createBackoff(databaseRetry);
    for (;;) {
      try {
        return await step();
      } catch (error) {
        if (signal.aborted) return undefined;
        const delay = backoff.failed();
        logger.error(`outbox consumer cannot ${what}; retrying`, {
          error: describeError(error),
          retryInMs: delay,
        });
        await sleep(delay, signal);
      }
    }
  }

  function toEvent(envelope: KafkaEnvelope, messageKey: string, row: RowState): OutboxEvent {
    return {
      outboxId: envelope.outboxId,
      eventId: envelope.eventId,
      eventType: envelope.eventType,
      eventVersion: envelope.eventVersion,
      aggregateId: envelope.aggregateId,
      payload: envelope.payload,
      messageKey,
      retryCount: row.retryCount,
    };
  }

  function fromError(error: unknown): Decision {
    if (error === undefined) return { kind: "consumed" };
    const reason = describeError(error);
    if (AppError.is(error, "deferred"))
      return { kind: "deferred", reason, delayMs: error.retryAfterMs ?? 1_000 };
    if (AppError.is(error) && !error.retryable) return { kind: "dead", reason };
    return { kind: "retry", reason: `handler failed: ${reason}` };
  }

  /** Runs the handlers of a batch; a handler with `handleBatch` gets all its events in one call. */
  async function decideAll(
    work: readonly { envelope: KafkaEnvelope; key: string; row: RowState }[],
    signal: AbortSignal,
  ): Promise<Decision[]> {
    const decisions = new Array<Decision>(work.length);
    const byHandler = new Map<OutboxHandler, number[]>();
    work.forEach(({ envelope }, index) => {
      const handler = handlers.get(envelope.eventType);
      if (!handler) {
        decisions[index] = {
          kind: "dead",
          reason: `no handler registered for event type ${envelope.eventType}`,
        };
      } else if (!handler.versions.includes(envelope.eventVersion)) {
        decisions[index] = {
          kind: "dead",
          reason: `${envelope.eventType} event_version not supported: ${JSON.stringify(envelope.eventVersion)}`,
        };
      } else {
        const group = byHandler.get(handler);
        if (group) group.push(index);
        else byHandler.set(handler, [index]);
      }
    });
    for (const [handler, indexes] of byHandler) {
      const events = indexes.map((index) => {
        const item = work[index] as (typeof work)[number];
        return toEvent(item.envelope, item.key, item.row);
      });
      if (handler.handleBatch) {
        let errors: readonly unknown[];
        try {
          errors = await handler.handleBatch(events, signal);
        } catch (error) {
          errors = events.map(() => error);
        }
        indexes.forEach((index, i) => {
          decisions[index] = fromError(errors[i]);
        });
      } else {
        const results = await mapByKey(
          events,
          (event) => event.messageKey || String(event.outboxId),
          options.concurrency,
          async (event) => {
            try {
              await handler.handle(event, signal);
              return undefined;
            } catch (error) {
              return error ?? new Error("handler threw nothing");
            }
          },
        );
        indexes.forEach((index, i) => {
          decisions[index] = fromError(results[i]);
        });
      }
    }
    return decisions;
  }

  async function handleBatch(messages: readonly IncomingMessage[], signal: AbortSignal): Promise<boolean> {
    const dead: { id: number; reason: string }[] = [];
    const candidates = new Map<number, { envelope: KafkaEnvelope; key: string }>();
    for (const message of messages) {
      const decoded = decodeKafkaEnvelope(message.value);
      if (!decoded.ok) {
        logger.warn("outbox consumer: unreadable message", {
          topic: message.topic,
          partition: message.partition,
          offset: message.offset,
          reason: decoded.reason,
          outboxId: decoded.outboxId,
        });
        events.emit("consumer:dropped", {
          reason: decoded.reason,
          topic: message.topic,
          offset: message.offset,
        });
        if (decoded.outboxId !== undefined) dead.push({ id: decoded.outboxId, reason: decoded.reason });
        continue;
      }
      const envelope = decoded.value;
      if (envelope.serviceName !== "" && envelope.serviceName !== route.service) {
        // Its outbox id belongs to another service's table: nothing here may be changed for it.
        const reason = `message belongs to service ${envelope.serviceName}, not ${route.service}`;
        logger.warn("outbox consumer: message for another service", { offset: message.offset, reason });
        events.emit("consumer:dropped", { reason, topic: message.topic, offset: message.offset });
        continue;
      }
      // A row re-published while an earlier copy is still in the topic arrives twice: handle it once.
      if (!candidates.has(envelope.outboxId)) {
        candidates.set(envelope.outboxId, { envelope, key: message.key ?? "" });
      }
    }

    const states = await untilStored(
      "load outbox rows",
      () => store.loadStates([...candidates.keys()]),
      signal,
    );
    if (states === undefined) return false;

    const skipped: number[] = [];
    const work: { envelope: KafkaEnvelope; key: string; row: RowState }[] = [];
    for (const [id, candidate] of candidates) {
      const row = states.get(id);
      // Only a `published` row is waiting for this delivery; anything else is a stale copy (already consumed
      // or dead) or was re-queued and will be published again.
      if (!row || row.status !== OutboxStatus.published) skipped.push(id);
      else work.push({ ...candidate, row });
    }

    const decisions = await decideAll(work, signal);

    const now = clock.now();
    const outcomes = {
      consumed: [] as number[],
      dead,
      retry: [] as { row: RowState; reason: string }[],
      deferred: [] as { id: number; until: Date; reason: string }[],
    };
    decisions.forEach((decision, index) => {
      const row = (work[index] as (typeof work)[number]).row;
      switch (decision.kind) {
        case "consumed":
          outcomes.consumed.push(row.id);
          break;
        case "dead":
          outcomes.dead.push({ id: row.id, reason: decision.reason });
          break;
        case "retry":
          outcomes.retry.push({ row, reason: decision.reason });
          break;
        case "deferred":
          outcomes.deferred.push({
            id: row.id,
            until: new Date(now.getTime() + decision.delayMs),
            reason: decision.reason,
          });
          break;
      }
    });
    for (const { id, reason } of outcomes.dead)
      logger.warn("outbox message is dead", { outboxId: id, reason });
    for (const { row, reason } of outcomes.retry) {
      logger.warn("outbox handler failed; will retry", {
        outboxId: row.id,
        retryCount: row.retryCount,
        reason,
      });
    }

    const applied = await untilStored("record outcomes", () => store.applyOutcomes(outcomes, now), signal);
    if (applied === undefined) return false;
    events.emit("consumer:outcomes", {
      consumed: outcomes.consumed,
      dead: outcomes.dead.map((d) => d.id),
      retried: outcomes.retry.map((r) => r.row.id),
      deferred: outcomes.deferred.map((d) => d.id),
      skipped,
    });
    return true;
  }

  return {
    handleBatch,
    run(signal: AbortSignal): Promise<void> {
      logger.info("outbox consumer started", { topic: route.topic, group: route.groupId });
      return bus.subscribe({ topic: route.topic, groupId: route.groupId, handleBatch }, signal);
    },
  };
}
