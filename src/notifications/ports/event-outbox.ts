import type { TraceCarrier } from "../../lib/trace-context.ts";
import type { OutboxId } from "../ids.ts";

/**
 * How the domain writes events for other processes, and the idempotency keys of requested notifications.
 * The outbox (src/outbox/enqueue.ts) stores events; the SQL adapter stores keys; the composition root binds
 * both to one database transaction.
 */

/** An event to write into the outbox; the routes decide its table and topic by `eventType`. */
export interface NewEvent {
  readonly eventType: string;
  readonly eventId: string;
  readonly eventVersion: string;
  readonly aggregateId: string;
  /** The Kafka key: events with one key are consumed in order. */
  readonly messageKey: string;
  readonly payload: unknown;
  /** The trace the event continues (the requesting call's, taken when it was made, not when it is written). */
  readonly trace?: TraceCarrier;
}

/** Writes an event into the outbox as part of the surrounding transaction; returns its outbox id. */
export type EnqueueEvent = (event: NewEvent) => Promise<OutboxId>;

/** Writes several events as part of the surrounding transaction; their outbox ids, in the same order. */
export type EnqueueEvents = (events: readonly NewEvent[]) => Promise<OutboxId[]>;

/** An idempotency key: the outbox row a request's `event_id` produced, and its dedupe key. */
export interface RequestKey {
  readonly eventId: string;
  readonly outboxId: OutboxId;
  readonly dedupeKey: string;
}

export interface RequestKeys {
  find(eventId: string): Promise<RequestKey | undefined>;
  /** Rejects when the event id is already taken (a concurrent request won). */
  add(key: RequestKey, now: Date): Promise<void>;
  /** The keys of these event ids that exist (a plain read, no lock). */
  findMany(eventIds: readonly string[]): Promise<Map<string, RequestKey>>;
  /** Adds them all, in the given order, or none: rejects when any event id is already taken. */
  addMany(keys: readonly RequestKey[], now: Date): Promise<void>;
}

/** Runs `work` in one transaction: the event and its key commit together or not at all. */
export type InRequestTransaction = <T>(
  work: (tx: {
    readonly enqueue: EnqueueEvent;
    readonly enqueueMany: EnqueueEvents;
    readonly keys: RequestKeys;
  }) => Promise<T>,
) => Promise<T>;
