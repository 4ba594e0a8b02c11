import { type Kysely, sql, type Transaction } from "kysely";
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
  /**
   * The same for several events of one route, in one multi-row insert where the database tells each row's id
   * (see `insertedIds`), else one insert each; the ids in the events' order.
   */
  enqueueMany(trx: Transaction<Database>, events: readonly NewOutboxEvent[]): Promise<number[]>;
}

export function createEnqueuer(deps: {
  readonly routes: RouteTable;
  readonly traits: DbTraits;
  readonly now: () => Date;
  readonly defaultMaxRetry?: number;
  /** Called after each insert, so an in-process relay does not wait out its poll interval. */
  readonly onEnqueued?: () => void;
}): Enqueuer {
  const rowOf = (event: NewOutboxEvent, now: string) => {
    const eventType = event.eventType.trim();
    if (!eventType) throw new AppError("invalid_argument", "event type is required", { field: "event_type" });
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
    const maxRetry = event.maxRetry !== undefined && event.maxRetry > 0 ? event.maxRetry : undefined;
    const row = {
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
        ...(event.trace ?? carrierOf()),
      }),
      status: OutboxStatus.pending,
      retry_count: 0,
      max_retry: maxRetry ?? deps.defaultMaxRetry ?? DEFAULT_MAX_RETRY,
      next_retry_at: now,
      created_at: now,
      updated_at: now,
    };
    return { table: route.table as OutboxTableName, row };
  };
  const idsOf = insertedIds(deps.traits);
  const enqueuer: Enqueuer = {
    async enqueue(trx, event) {
      const { table, row } = rowOf(event, deps.traits.time(deps.now()));
      const result = await trx.insertInto(table).values(row).executeTakeFirstOrThrow();
      deps.onEnqueued?.();
      return Number(result.insertId);
    },
    async enqueueMany(trx, events) {
      const now = deps.traits.time(deps.now());
      const rows = events.map((event) => rowOf(event, now));
      const table = rows[0]?.table;
      if (!table) return [];
      const oneTable = rows.every((r) => r.table === table);
      const step = oneTable && rows.length > 1 ? await idsOf.step(trx) : undefined;
      if (step === undefined) {
        const ids: number[] = [];
        for (const event of events) ids.push(await enqueuer.enqueue(trx, event));
        return ids;
      }
      const result = await trx
        .insertInto(table)
        .values(rows.map((r) => r.row))
        .executeTakeFirstOrThrow();
      if (Number(result.numInsertedOrUpdatedRows) !== rows.length) {
        throw new AppError(
          "internal",
          `outbox: inserted ${result.numInsertedOrUpdatedRows} of ${rows.length}`,
        );
      }
      deps.onEnqueued?.();
      return idsOf.ids(Number(result.insertId), rows.length, step);
    },
  };
  return enqueuer;
}

/**
 * The ids of a multi-row insert's rows, where the database guarantees them. MySQL/MariaDB gives the FIRST
 * row's id and, for a multi-row `INSERT … VALUES` (a "simple insert"), assigns consecutive ids, spaced by
 * `auto_increment_increment`, when `innodb_autoinc_lock_mode` is 0 or 1 (MariaDB's default is 1); in mode
 * 2 (MySQL 8's default) concurrent inserts may interleave, so rows are inserted one at a time there. SQLite
 * (one writer) gives the LAST row's id, the rows numbered consecutively before it.
 */
function insertedIds(traits: DbTraits) {
  let mysqlStep: Promise<number | undefined> | undefined;
  return {
    /** The spacing of consecutive ids, or undefined when a multi-row insert's ids cannot be told. */
    step(trx: Transaction<Database>): Promise<number | undefined> {
      if (traits.dialect === "sqlite") return Promise.resolve(1);
      mysqlStep ??= sql<{ mode: unknown; step: unknown }>`select @@innodb_autoinc_lock_mode as mode,
        @@auto_increment_increment as step`
        .execute(trx)
        .then(({ rows: [row] }) => (row && Number(row.mode) <= 1 ? Number(row.step) || 1 : undefined))
        .catch((error: unknown) => {
          mysqlStep = undefined;
          throw error;
        });
      return mysqlStep;
    },
    ids(reported: number, count: number, step: number): number[] {
      const first = traits.dialect === "sqlite" ? reported - (count - 1) * step : reported;
      return Array.from({ length: count }, (_, i) => first + i * step);
    },
  };
}
