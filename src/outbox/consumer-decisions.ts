import { AppError, describeError } from "../lib/errors.ts";
import type { TraceCarrier } from "../lib/trace-context.ts";
import { type MessageOrigin, startConsumeSpan } from "./consumer-tracing.ts";
import type { KafkaEnvelope } from "./envelope.ts";
import type { EventFailure, OutboxEvent, OutboxHandler } from "./outbox-handler.ts";
import type { ConsumerRowState, Outcomes } from "./store/consumer-store.ts";
import type { RowState } from "./store/outbox-table.ts";

/** A message the consumer may hand to a handler: decoded, and its row still claimed. */
export interface WorkItem {
  readonly envelope: KafkaEnvelope;
  readonly key: string;
  readonly row: ConsumerRowState;
  readonly origin: MessageOrigin;
}

/** Why a message is dead, as a bounded label (metrics): the reason itself is free text. */
export type DeadReasonClass = "unreadable" | "crash_loop" | "no_handler" | "version_mismatch" | "rejected";

/** A message dead before any handler saw it (unreadable, or its row crashed the process too often). */
export interface DeadUnhandled {
  readonly id: number;
  readonly reason: string;
  readonly reasonClass: DeadReasonClass;
}

export type Decision =
  | { readonly kind: "consumed" }
  | { readonly kind: "dead"; readonly reason: string; readonly reasonClass: DeadReasonClass }
  | { readonly kind: "retry"; readonly reason: string }
  | { readonly kind: "deferred"; readonly reason: string; readonly delayMs: number };

/** The handler contract (outbox-handler.ts) as a decision about the row. */
export function decisionOf(failure: EventFailure | undefined): Decision {
  if (failure === undefined) return { kind: "consumed" };
  const reason = describeError(failure);
  if (AppError.is(failure, "deferred"))
    return { kind: "deferred", reason, delayMs: failure.retryAfterMs ?? 1_000 };
  if (AppError.is(failure) && !failure.retryable) return { kind: "dead", reason, reasonClass: "rejected" };
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
        reasonClass: "no_handler",
      };
    } else if (!handler.versions.includes(envelope.eventVersion.trim())) {
      // SmartFlow's Go handler's `last_error` for this, word for word (operators search for it).
      decisions[index] = {
        kind: "dead",
        reason: `${envelope.eventType} event_version 不匹配: ${envelope.eventVersion.trim()}`,
        reasonClass: "version_mismatch",
      };
    } else {
      const group = byHandler.get(handler);
      if (group) group.push(index);
      else byHandler.set(handler, [index]);
    }
  });
  for (const [handler, indexes] of byHandler) {
    const spans = indexes.map((index) => {
      const item = work[index] as WorkItem;
      return startConsumeSpan(item.origin, item.envelope.outboxId, item.envelope.payload, handler);
    });
    const events = indexes.map((index, i) => toEvent(work[index] as WorkItem, spans[i]?.trace));
    let failures: readonly (EventFailure | undefined)[];
    try {
      failures = await handler.handleEvents(events, signal);
    } catch (error) {
      failures = events.map(() => error ?? new Error("handler threw nothing"));
    }
    indexes.forEach((index, i) => {
      const decision = decisionOf(failures[i]);
      decisions[index] = decision;
      spans[i]?.end(decision.kind === "consumed" ? undefined : `${decision.kind}: ${decision.reason}`);
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
  unhandled: readonly DeadUnhandled[],
  now: Date,
): Outcomes {
  const outcomes = {
    finished: work.map((item) => item.row.id),
    consumed: [] as number[],
    dead: unhandled.map(({ id, reason }) => ({ id, reason })),
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

function toEvent({ envelope, key, row }: WorkItem, trace: TraceCarrier | undefined): OutboxEvent {
  return {
    outboxId: envelope.outboxId,
    eventId: envelope.eventId,
    eventType: envelope.eventType,
    eventVersion: envelope.eventVersion,
    aggregateId: envelope.aggregateId,
    payload: envelope.payload,
    messageKey: key,
    retryCount: row.retryCount,
    ...(trace ? { trace } : {}),
  };
}
