import { AppError, describeError } from "../lib/errors.ts";
import type { KafkaEnvelope } from "./envelope.ts";
import type { EventFailure, OutboxEvent, OutboxHandler } from "./outbox-handler.ts";
import type { ConsumerRowState, Outcomes } from "./store/consumer-store.ts";
import type { RowState } from "./store/outbox-table.ts";

/** A message the consumer may hand to a handler: decoded, and its row still claimed. */
export interface WorkItem {
  readonly envelope: KafkaEnvelope;
  readonly key: string;
  readonly row: ConsumerRowState;
}

export type Decision =
  | { readonly kind: "consumed" }
  | { readonly kind: "dead"; readonly reason: string }
  | { readonly kind: "retry"; readonly reason: string }
  | { readonly kind: "deferred"; readonly reason: string; readonly delayMs: number };

/** The handler contract (outbox-handler.ts) as a decision about the row. */
export function decisionOf(failure: EventFailure | undefined): Decision {
  if (failure === undefined) return { kind: "consumed" };
  const reason = describeError(failure);
  if (AppError.is(failure, "deferred"))
    return { kind: "deferred", reason, delayMs: failure.retryAfterMs ?? 1_000 };
  if (AppError.is(failure) && !failure.retryable) return { kind: "dead", reason };
  return { kind: "retry", reason: `handler failed: ${reason}` };
}

/**
 * Runs the handlers over a batch's work: each handler gets all its events in one call. An event type without
 * a handler, or a version the handler does not accept, is dead without reaching any handler.
 */
export async function decideAll(
  handlers: ReadonlyMap<string, OutboxHandler>,
  work: readonly WorkItem[],
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
    } else if (!handler.versions.includes(envelope.eventVersion.trim())) {
      // SmartFlow's Go handler's `last_error` for this, word for word (operators search for it).
      decisions[index] = {
        kind: "dead",
        reason: `${envelope.eventType} event_version 不匹配: ${envelope.eventVersion.trim()}`,
      };
    } else {
      const group = byHandler.get(handler);
      if (group) group.push(index);
      else byHandler.set(handler, [index]);
    }
  });
  for (const [handler, indexes] of byHandler) {
    const events = indexes.map((index) => toEvent(work[index] as WorkItem));
    let failures: readonly (EventFailure | undefined)[];
    try {
      failures = await handler.handleEvents(events, signal);
    } catch (error) {
      failures = events.map(() => error ?? new Error("handler threw nothing"));
    }
    indexes.forEach((index, i) => {
      decisions[index] = decisionOf(failures[i]);
    });
  }
  return decisions;
}

/**
 * The decisions of a batch as the writes that apply them (`dead` starts with the unreadable messages and the
 * rows that crashed the process too often); every handled row's handling is counted as finished.
 */
export function toOutcomes(
  work: readonly WorkItem[],
  decisions: readonly Decision[],
  unreadable: readonly { readonly id: number; readonly reason: string }[],
  now: Date,
): Outcomes {
  const outcomes = {
    finished: work.map((item) => item.row.id),
    consumed: [] as number[],
    dead: [...unreadable],
    retry: [] as { row: RowState; reason: string }[],
    deferred: [] as { id: number; until: Date; reason: string }[],
  };
  decisions.forEach((decision, index) => {
    const { row } = work[index] as WorkItem;
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
  return outcomes;
}

function toEvent({ envelope, key, row }: WorkItem): OutboxEvent {
  return {
    outboxId: envelope.outboxId,
    eventId: envelope.eventId,
    eventType: envelope.eventType,
    eventVersion: envelope.eventVersion,
    aggregateId: envelope.aggregateId,
    payload: envelope.payload,
    messageKey: key,
    retryCount: row.retryCount,
  };
}
