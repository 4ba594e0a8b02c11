import type { DatabaseConfig } from "./db/database.ts";
import type { LogLevel } from "./lib/logger.ts";
import { isValidTableName, knownServices, type RouteOverrides } from "./outbox/routes.ts";

/**
 * The whole configuration, parsed once from the environment at the process edge (src/main.ts) and frozen.
 * Nothing else reads `process.env`. Every key, its default and its meaning is listed in `configKeys`; a unit
 * test checks that the README documents each of them.
 */
export interface Config {
  readonly logLevel: LogLevel;
  readonly database: DatabaseConfig;
  /** Empty: the in-process bus (embedded default). */
  readonly kafka: {
    readonly brokers: readonly string[];
    readonly clientId: string;
    readonly connectTimeoutMs: number;
    readonly partitionsConcurrently: number;
  };
  readonly outbox: {
    readonly routeOverrides: RouteOverrides;
    readonly topicPartitions: number;
    readonly relayBatchSize: number;
    readonly relayPollIntervalMs: number;
    readonly publishTimeoutMs: number;
    readonly maxRetry: number;
    readonly retryBaseMs: number;
    readonly retryMaxMs: number;
    readonly stalePublishedMs: number;
    readonly sweepIntervalMs: number;
    readonly consumerBatchSize: number;
    readonly consumerConcurrency: number;
  };
  readonly shutdownGraceMs: number;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

interface KeyDoc {
  readonly key: string;
  readonly default: string;
  readonly doc: string;
}

export const configKeys: readonly KeyDoc[] = [
  { key: "LOG_LEVEL", default: "info", doc: "debug, info, warn, error or silent" },
  {
    key: "DATABASE_URL",
    default: "sqlite:data/smartflow-notification.sqlite",
    doc: "`mysql://user:pass@host:port/db` (production) or `sqlite:<path>` / `sqlite::memory:` (embedded)",
  },
  { key: "DATABASE_POOL_SIZE", default: "10", doc: "MySQL connections in the pool" },
  {
    key: "KAFKA_BROKERS",
    default: "(empty)",
    doc: "comma-separated `host:port`; empty runs the in-process bus",
  },
  { key: "KAFKA_CLIENT_ID", default: "smartflow-notification", doc: "Kafka client id" },
  { key: "KAFKA_CONNECT_TIMEOUT_MS", default: "3000", doc: "Kafka connection timeout" },
  { key: "KAFKA_PARTITIONS_CONCURRENTLY", default: "3", doc: "partitions of the topic handled at once" },
  {
    key: "OUTBOX_SERVICES_<SERVICE>_{TABLE,TOPIC,GROUP_ID}",
    default:
      "`<service>_outbox_messages`, `smartflow.<service>.outbox`, `smartflow-<service>-outbox-consumer`",
    doc: "route overrides (SERVICE in upper case, `-` as `_`, e.g. `OUTBOX_SERVICES_NOTIFICATION_TABLE`)",
  },
  { key: "OUTBOX_TOPIC_PARTITIONS", default: "3", doc: "partitions of a topic the relay creates" },
  { key: "OUTBOX_RELAY_BATCH_SIZE", default: "500", doc: "rows claimed and published per batch" },
  { key: "OUTBOX_RELAY_POLL_INTERVAL_MS", default: "50", doc: "idle relay's wait between scans" },
  { key: "OUTBOX_PUBLISH_TIMEOUT_MS", default: "10000", doc: "timeout of one publish" },
  { key: "OUTBOX_MAX_RETRY", default: "20", doc: "`max_retry` of rows this service enqueues" },
  { key: "OUTBOX_RETRY_BASE_MS", default: "1000", doc: "outbox backoff is base × n², capped" },
  { key: "OUTBOX_RETRY_MAX_MS", default: "100000", doc: "cap of the outbox backoff" },
  { key: "OUTBOX_STALE_PUBLISHED_MS", default: "600000", doc: "a row `published` this long is re-queued" },
  { key: "OUTBOX_SWEEP_INTERVAL_MS", default: "30000", doc: "how often the sweeper looks for such rows" },
  { key: "OUTBOX_CONSUMER_BATCH_SIZE", default: "500", doc: "messages handled (and committed) together" },
  { key: "OUTBOX_CONSUMER_CONCURRENCY", default: "64", doc: "handlers running at once within a batch" },
  { key: "SHUTDOWN_GRACE_MS", default: "15000", doc: "how long shutdown waits for in-flight work" },
];

type Env = Readonly<Record<string, string | undefined>>;

export function loadConfig(env: Env): Config {
  const read = (key: string) => {
    const value = env[key]?.trim();
    return value === "" ? undefined : value;
  };
  const int = (key: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const raw = read(key);
    if (raw === undefined) return fallback;
    if (!/^-?\d+$/.test(raw))
      throw new ConfigError(`${key} must be a whole number, got ${JSON.stringify(raw)}`);
    const value = Number(raw);
    if (value < min || value > max)
      throw new ConfigError(`${key} must be between ${min} and ${max}, got ${value}`);
    return value;
  };

  const logLevel = (read("LOG_LEVEL") ?? "info") as LogLevel;
  if (!["debug", "info", "warn", "error", "silent"].includes(logLevel)) {
    throw new ConfigError(
      `LOG_LEVEL must be one of debug, info, warn, error, silent; got ${JSON.stringify(logLevel)}`,
    );
  }

  const retryBaseMs = int("OUTBOX_RETRY_BASE_MS", 1_000, 1);
  const retryMaxMs = int("OUTBOX_RETRY_MAX_MS", 100_000, 1);
  if (retryMaxMs < retryBaseMs)
    throw new ConfigError("OUTBOX_RETRY_MAX_MS must not be below OUTBOX_RETRY_BASE_MS");
  const publishTimeoutMs = int("OUTBOX_PUBLISH_TIMEOUT_MS", 10_000, 100);
  const stalePublishedMs = int("OUTBOX_STALE_PUBLISHED_MS", 600_000, 1_000);
  if (stalePublishedMs <= publishTimeoutMs) {
    throw new ConfigError("OUTBOX_STALE_PUBLISHED_MS must be longer than OUTBOX_PUBLISH_TIMEOUT_MS");
  }

  return deepFreeze({
    logLevel,
    database: parseDatabase(read("DATABASE_URL") ?? "sqlite:data/smartflow-notification.sqlite", () =>
      int("DATABASE_POOL_SIZE", 10, 1, 500),
    ),
    kafka: {
      brokers: parseBrokers(read("KAFKA_BROKERS")),
      clientId: read("KAFKA_CLIENT_ID") ?? "smartflow-notification",
      connectTimeoutMs: int("KAFKA_CONNECT_TIMEOUT_MS", 3_000, 100),
      partitionsConcurrently: int("KAFKA_PARTITIONS_CONCURRENTLY", 3, 1, 1_000),
    },
    outbox: {
      routeOverrides: parseRouteOverrides(env),
      topicPartitions: int("OUTBOX_TOPIC_PARTITIONS", 3, 1, 10_000),
      relayBatchSize: int("OUTBOX_RELAY_BATCH_SIZE", 500, 1, 10_000),
      relayPollIntervalMs: int("OUTBOX_RELAY_POLL_INTERVAL_MS", 50, 1),
      publishTimeoutMs,
      maxRetry: int("OUTBOX_MAX_RETRY", 20, 1, 1_000),
      retryBaseMs,
      retryMaxMs,
      stalePublishedMs,
      sweepIntervalMs: int("OUTBOX_SWEEP_INTERVAL_MS", 30_000, 10),
      consumerBatchSize: int("OUTBOX_CONSUMER_BATCH_SIZE", 500, 1, 10_000),
      consumerConcurrency: int("OUTBOX_CONSUMER_CONCURRENCY", 64, 1, 10_000),
    },
    shutdownGraceMs: int("SHUTDOWN_GRACE_MS", 15_000, 0),
  });
}

function parseDatabase(url: string, poolSize: () => number): DatabaseConfig {
  if (url.startsWith("sqlite:")) {
    const path = url.slice("sqlite:".length);
    if (!path)
      throw new ConfigError("DATABASE_URL sqlite: needs a path, e.g. sqlite:data/notification.sqlite");
    return { kind: "sqlite", path };
  }
  if (url.startsWith("mysql://")) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ConfigError(`DATABASE_URL is not a valid URL: ${maskPassword(url)}`);
    }
    if (parsed.pathname.length <= 1)
      throw new ConfigError("DATABASE_URL must name a database: mysql://…/<db>");
    return { kind: "mysql", url, poolSize: poolSize() };
  }
  throw new ConfigError(
    `DATABASE_URL must start with mysql:// or sqlite:, got ${JSON.stringify(maskPassword(url))}`,
  );
}

function parseBrokers(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  const brokers = raw
    .split(",")
    .map((broker) => broker.trim())
    .filter(Boolean);
  for (const broker of brokers) {
    if (!/^[^\s:]+:\d{1,5}$/.test(broker)) {
      throw new ConfigError(`KAFKA_BROKERS entries must be host:port, got ${JSON.stringify(broker)}`);
    }
  }
  return brokers;
}

function parseRouteOverrides(env: Env): RouteOverrides {
  const overrides: Record<string, { table?: string; topic?: string; groupId?: string }> = {};
  for (const service of knownServices) {
    const prefix = `OUTBOX_SERVICES_${service.toUpperCase().replaceAll("-", "_")}_`;
    const table = env[`${prefix}TABLE`]?.trim();
    const topic = env[`${prefix}TOPIC`]?.trim();
    const groupId = env[`${prefix}GROUP_ID`]?.trim();
    if (table && !isValidTableName(table)) {
      throw new ConfigError(`${prefix}TABLE must be a plain SQL identifier, got ${JSON.stringify(table)}`);
    }
    if (topic && !/^[A-Za-z0-9._-]{1,249}$/.test(topic)) {
      throw new ConfigError(`${prefix}TOPIC is not a valid Kafka topic name: ${JSON.stringify(topic)}`);
    }
    if (table || topic || groupId) {
      overrides[service] = {
        ...(table ? { table } : {}),
        ...(topic ? { topic } : {}),
        ...(groupId ? { groupId } : {}),
      };
    }
  }
  return overrides;
}

function maskPassword(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, "$1****@");
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
