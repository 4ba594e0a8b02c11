import type { Kysely, Transaction } from "kysely";
import type { DbTraits } from "../db/db-traits.ts";
import type { Database, OutboxTableName } from "../db/schema.ts";
import { AppError } from "../lib/errors.ts";
import { stringifyJson } from "../lib/json-int64.ts";
import { carrierOf, type TraceCarrier } from "../lib/trace-context.ts";
import { encodeRowEnvelope } from "./envelope.ts";
import { OutboxStatus } from "./outbox-status.ts";
import type { RouteTable } from "./routes.ts";
import { DEFAULT_MAX_RETRY } from "./store/outbox-table.ts";

/** An event to write into the outbox, as SmartFlow's Go producers' `CreateMessage` takes it. */
export interface NewOutboxEvent {
  readonly eventType: string;
  /** The event's JSON payload, as a value or as JSON text. */
  readonly payload: unknown;
  readonly messageKey: string;
  readonly eventId?: string;
  readonly eventVersion?: string;
  readonly aggregateId?: string;
  readonly maxRetry?: number;
  /** The trace the event continues; the active span's when absent (none when there is none). */
  readonly trace?: TraceCarrier;
}

export interface Enqueuer {
  /**
   * Writes the event into its route's outbox table inside the caller's transaction, in the row format of
   * SmartFlow's Go producers. It becomes visible to the relay when that transaction commits; a rolled-back
   * transaction leaves nothing behind. Returns the outbox id.
   */
  enqueue(trx: Transaction<Database> | Kysely<Database>, event: NewOutboxEvent): Promise<number>;
}

export function createEnqueuer(deps: {
  readonly routes: RouteTable;
  readonly traits: DbTraits;
  readonly now: () => Date;
  readonly defaultMaxRetry?: number;
  /** Called after each insert, so an in-process relay does not wait out its poll interval. */
  readonly onEnqueued?: () => void;
}): Enqueuer {
  return {
    async enqueue(trx, event) {
      const eventType = event.eventType.trim();
      if (!eventType)
        throw new AppError("invalid_argument", "event type is required", { field: "event_type" });
      const route = deps.routes.event(eventType);
      if (!route) {
        throw new AppError("invalid_argument", `outbox route not registered: eventType=${eventType}`, {
          field: "event_type",
        });
      }
      if (event.payload === undefined)
        throw new AppError("invalid_argument", "payload is required", { field: "payload" });
      // bigint values (SmartFlow's int64 ids) are written as JSON numbers, as Go writes them.
      const payload = typeof event.payload === "string" ? event.payload : stringifyJson(event.payload);
      const now = deps.traits.time(deps.now());
      const maxRetry = event.maxRetry !== undefined && event.maxRetry > 0 ? event.maxRetry : undefined;
      const trace = event.trace ?? carrierOf();
      const result = await trx
        .insertInto(route.table as OutboxTableName)
        .values({
          biz_type: eventType,
          service_name: route.service,
          topic: route.topic,
          message_key: event.messageKey,
          payload: encodeRowEnvelope({
            eventId: event.eventId ?? "",
            eventType,
            eventVersion: event.eventVersion ?? "",
            aggregateId: event.aggregateId ?? event.messageKey,
            payload,
            ...trace,
          }),
          status: OutboxStatus.pending,
          retry_count: 0,
          max_retry: maxRetry ?? deps.defaultMaxRetry ?? DEFAULT_MAX_RETRY,
          next_retry_at: now,
          created_at: now,
          updated_at: now,
        })
        .executeTakeFirstOrThrow();
      deps.onEnqueued?.();
      return Number(result.insertId);
    },
  };
}
