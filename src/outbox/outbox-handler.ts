import { mapByKey } from "../lib/concurrency.ts";
import type { TraceCarrier } from "../lib/trace-context.ts";

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
  /** The trace its handling continues (the consumer span's), when there is one. */
  readonly trace?: TraceCarrier;
}

/**
 * What a handler says about one event: `undefined` when it is done, else the error it failed with.
 * - `AppError` with `retryable: false` (e.g. code `poison`) → the row is `dead`, with the message as reason;
 * - `AppError('deferred', …, {retryAfterMs})` → re-published after that delay, without spending the row's
 *   retry budget (weakness 8: a lease held elsewhere is nobody's failure);
 * - anything else → re-published with the outbox backoff, `dead` after `max_retry`.
 */
export type EventFailure = unknown;

/**
 * A handler of one event type. The consumer gives it all of a batch's events of its type at once (so it can
 * group its database writes) and applies the results of the whole batch in one transaction, each guarded on
 * the row still being claimed. `handleEvents` returns one result per event, in order; rejecting fails every
 * event of the call (retried with backoff).
 */
export interface OutboxHandler {
  readonly eventType: string;
  /** Accepted `event_version` values, compared after trimming; others are `dead`. */
  readonly versions: readonly string[];
  /**
   * A W3C trace id the payload names, continued when the message has no `traceparent` header (a row a Go
   * producer wrote); optional.
   */
  readonly traceIdOf?: (payload: string) => string | undefined;
  handleEvents(
    events: readonly OutboxEvent[],
    signal: AbortSignal,
  ): Promise<readonly (EventFailure | undefined)[]>;
}

/**
 * A handler from a function of one event: events of one message key run in order, different keys up to
 * `concurrency` at once; a throw is that event's failure.
 */
export function perEventHandler(options: {
  readonly eventType: string;
  readonly versions: readonly string[];
  readonly concurrency: number;
  readonly handle: (event: OutboxEvent, signal: AbortSignal) => Promise<void>;
}): OutboxHandler {
  return {
    eventType: options.eventType,
    versions: options.versions,
    handleEvents: (events, signal) =>
      mapByKey(
        events,
        (event) => event.messageKey || String(event.outboxId),
        options.concurrency,
        async (event) => {
          try {
            await options.handle(event, signal);
            return undefined;
          } catch (error) {
            return error ?? new Error("handler threw nothing");
          }
        },
      ),
  };
}
