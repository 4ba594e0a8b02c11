import { randomBytes } from "node:crypto";
import { type RawBuilder, sql } from "kysely";
import { type App, createApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config/load-config.ts";
import type { Clock } from "../../src/lib/clock.ts";
import { createLogger } from "../../src/lib/logger.ts";
import type { MessageBus } from "../../src/messaging/bus.ts";
import type { OutboxHandler } from "../../src/outbox/outbox-handler.ts";
import { testBrokers, uniqueName } from "./kafka.ts";
import { createTestDatabase, type TestDatabase } from "./mysql.ts";

export type Backend = "mysql+kafka" | "sqlite+memory";
export const backends: readonly Backend[] = ["mysql+kafka", "sqlite+memory"];

export interface TestEnv {
  readonly backend: Backend;
  readonly topic: string;
  readonly groupId: string;
  /** Environment shared by every app of this test (same database, topic and group). */
  readonly env: Record<string, string>;
  /** The test's own MariaDB database (mysql+kafka only), for SQL written as other services write it. */
  readonly database: TestDatabase | undefined;
  dispose(): Promise<void>;
}

/**
 * Isolation for one test: a database of its own (MariaDB) or a SQLite file, and a unique topic and consumer
 * group, so that outbox ids of other tests never reach this test's consumers.
 */
export async function createTestEnv(backend: Backend, extra: Record<string, string> = {}): Promise<TestEnv> {
  const topic = uniqueName("sfn.test");
  const groupId = uniqueName("sfn-test-group");
  let database: TestDatabase | undefined;
  let databaseUrl: string;
  if (backend === "mysql+kafka") {
    database = await createTestDatabase();
    databaseUrl = database.url;
  } else {
    databaseUrl = `sqlite:${process.env.TMPDIR ?? "/tmp"}/sfn-test-${randomBytes(5).toString("hex")}.sqlite`;
  }
  const env: Record<string, string> = {
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    DATABASE_URL: databaseUrl,
    KAFKA_BROKERS: backend === "mysql+kafka" ? testBrokers().join(",") : "",
    OUTBOX_SERVICES_NOTIFICATION_TOPIC: topic,
    OUTBOX_SERVICES_NOTIFICATION_GROUP_ID: groupId,
    OUTBOX_RELAY_POLL_INTERVAL_MS: "20",
    OUTBOX_RETRY_BASE_MS: "50",
    OUTBOX_RETRY_MAX_MS: "200",
    SHUTDOWN_GRACE_MS: "10000",
    GRPC_ADDR: "127.0.0.1:0",
    METRICS_ADDR: "127.0.0.1:0",
    ...extra,
  };
  return {
    backend,
    topic,
    groupId,
    env,
    database,
    async dispose() {
      await database?.drop();
    },
  };
}

export interface StartOptions {
  readonly handlers?: readonly OutboxHandler[];
  readonly clock?: Clock;
  readonly env?: Record<string, string>;
  readonly bus?: MessageBus;
  readonly start?: boolean;
}

export async function startApp(testEnv: TestEnv, options: StartOptions = {}): Promise<App> {
  const config = loadConfig({ ...testEnv.env, ...options.env });
  const app = createApp(config, {
    logger: createLogger(config.logLevel).child({ test: true }),
    ...(options.handlers ? { handlers: options.handlers } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.bus ? { bus: options.bus } : {}),
  });
  if (options.start !== false) await app.start();
  return app;
}

/** Runs raw SQL through the app's own connection, on either database. */
export async function query<T>(app: App, statement: RawBuilder<unknown> | string): Promise<T[]> {
  const built = typeof statement === "string" ? sql.raw(statement) : statement;
  const result = await built.execute(app.db.kysely);
  return result.rows as T[];
}

export interface OutboxRowView {
  id: number;
  status: string;
  retry_count: number;
  max_retry: number;
  last_error: string | null;
  next_retry_at: unknown;
  published_at: unknown;
  consumed_at: unknown;
}

export async function outboxRows(app: App, ids?: readonly number[]): Promise<OutboxRowView[]> {
  let builder = app.db.kysely
    .selectFrom(app.route.table as "notification_outbox_messages")
    .select([
      "id",
      "status",
      "retry_count",
      "max_retry",
      "last_error",
      "next_retry_at",
      "published_at",
      "consumed_at",
    ])
    .orderBy("id");
  if (ids) builder = builder.where("id", "in", ids);
  const rows = await builder.execute();
  return rows.map((row) => ({
    ...row,
    id: Number(row.id),
    retry_count: Number(row.retry_count),
    max_retry: Number(row.max_retry),
  }));
}

/**
 * Records every event the apps emit (one or several instances, in one timeline) and lets a test await a
 * condition over what happened so far; the condition is checked again on each new event, never on a timer.
 */
export function recordEvents(...apps: App[]) {
  const seen: { name: string; event: unknown }[] = [];
  const waiters = new Set<() => void>();
  for (const app of apps) {
    app.events.onAny((name, event) => {
      seen.push({ name, event });
      for (const check of waiters) check();
    });
  }
  return {
    seen,
    of<T>(name: string): T[] {
      return seen.filter((entry) => entry.name === name).map((entry) => entry.event as T);
    },
    until(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
      if (condition()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting until ${what}`));
        }, timeoutMs);
        const check = () => {
          if (!condition()) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
      });
    },
  };
}

export { uniqueName };
