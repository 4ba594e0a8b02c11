import { defaultAllowedHosts } from "./channels/feishu/webhook-url.ts";
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
  readonly feishu: {
    readonly allowedHosts: readonly string[];
    readonly caFile: string | undefined;
    readonly timeoutMs: number;
    readonly frontendBaseUrl: string;
  };
  readonly delivery: {
    readonly sendingLeaseMs: number;
    readonly retryBaseMs: number;
    readonly retryMaxMs: number;
    readonly retryJitterPercent: number;
    readonly retryScanIntervalMs: number;
    readonly retryBatchSize: number;
    readonly strandedAfterMs: number;
    readonly concurrency: number;
    readonly claimBatch: number;
    readonly ratePerSecond: number;
    readonly ratePerMinute: number;
  };
  readonly api: {
    readonly host: string;
    readonly port: number;
    readonly rpcTimeoutMs: number;
    readonly maxMessageBytes: number;
    readonly token: string | undefined;
    readonly tokenForLegacy: boolean;
    readonly tls:
      | { readonly certFile: string; readonly keyFile: string; readonly clientCaFile?: string }
      | undefined;
    readonly healthCheckIntervalMs: number;
  };
  /** 32 bytes: encrypts webhook URLs, bearer tokens and signing secrets at rest; undefined stores them as is. */
  readonly secretsKey: Buffer | undefined;
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
  { key: "OUTBOX_RELAY_BATCH_SIZE", default: "1000", doc: "rows claimed and published per batch" },
  { key: "OUTBOX_RELAY_POLL_INTERVAL_MS", default: "50", doc: "idle relay's wait between scans" },
  { key: "OUTBOX_PUBLISH_TIMEOUT_MS", default: "10000", doc: "timeout of one publish" },
  { key: "OUTBOX_MAX_RETRY", default: "20", doc: "`max_retry` of rows this service enqueues" },
  { key: "OUTBOX_RETRY_BASE_MS", default: "1000", doc: "outbox backoff is base × n², capped" },
  { key: "OUTBOX_RETRY_MAX_MS", default: "100000", doc: "cap of the outbox backoff" },
  { key: "OUTBOX_STALE_PUBLISHED_MS", default: "600000", doc: "a row `published` this long is re-queued" },
  { key: "OUTBOX_SWEEP_INTERVAL_MS", default: "30000", doc: "how often the sweeper looks for such rows" },
  { key: "OUTBOX_CONSUMER_BATCH_SIZE", default: "500", doc: "messages handled (and committed) together" },
  { key: "OUTBOX_CONSUMER_CONCURRENCY", default: "64", doc: "handlers running at once within a batch" },
  {
    key: "FEISHU_ALLOWED_HOSTS",
    default: "feishu.cn,www.feishu.cn,open.feishu.cn,open.larksuite.com",
    doc: "webhook hosts accepted (`host` means port 443; `host:port` for others)",
  },
  { key: "FEISHU_CA_FILE", default: "(none)", doc: "an extra CA certificate (PEM) trusted for webhook TLS" },
  {
    key: "FEISHU_TIMEOUT_MS",
    default: "5000",
    doc: "timeout of one webhook request (below the 6 s RPC deadline)",
  },
  {
    key: "FRONTEND_BASE_URL",
    default: "https://smartflow.example.com",
    doc: "base of the action URL in messages",
  },
  {
    key: "DELIVERY_SENDING_LEASE_MS",
    default: "600000",
    doc: "how long a sender owns a record; must exceed 2 × FEISHU_TIMEOUT_MS",
  },
  { key: "DELIVERY_RETRY_BASE_MS", default: "300000", doc: "first retry delay (doubles per attempt)" },
  { key: "DELIVERY_RETRY_MAX_MS", default: "1800000", doc: "longest retry delay" },
  { key: "DELIVERY_RETRY_JITTER_PERCENT", default: "10", doc: "random extra on each retry delay" },
  { key: "DELIVERY_RETRY_SCAN_INTERVAL_MS", default: "60000", doc: "how often the retry loop scans" },
  { key: "DELIVERY_RETRY_BATCH_SIZE", default: "100", doc: "records the retry loop takes per scan" },
  {
    key: "DELIVERY_STRANDED_AFTER_MS",
    default: "120000",
    doc: "a `pending` record untouched this long is retried",
  },
  { key: "DELIVERY_CONCURRENCY", default: "128", doc: "webhook requests in flight at once" },
  { key: "DELIVERY_CLAIM_BATCH", default: "100", doc: "records claimed per UPDATE" },
  { key: "DELIVERY_RATE_PER_SECOND", default: "5", doc: "sends per second per destination (Feishu: 5)" },
  { key: "DELIVERY_RATE_PER_MINUTE", default: "100", doc: "sends per minute per destination (Feishu: 100)" },
  { key: "GRPC_ADDR", default: "0.0.0.0:9082", doc: "the API's one port: gRPC, Connect and gRPC-Web" },
  { key: "RPC_TIMEOUT_MS", default: "6000", doc: "server deadline of a call (a client's shorter one wins)" },
  { key: "RPC_MAX_MESSAGE_BYTES", default: "4194304", doc: "largest request accepted" },
  {
    key: "API_TOKEN",
    default: "(none)",
    doc: "bearer token callers must send; the operations service requires it",
  },
  {
    key: "API_TOKEN_FOR_LEGACY",
    default: "false",
    doc: "also require API_TOKEN on smartflow.notification.Notification",
  },
  {
    key: "TLS_CERT_FILE",
    default: "(none)",
    doc: "serve TLS with this certificate (PEM); needs TLS_KEY_FILE",
  },
  { key: "TLS_KEY_FILE", default: "(none)", doc: "the certificate's private key (PEM)" },
  {
    key: "TLS_CLIENT_CA_FILE",
    default: "(none)",
    doc: "require client certificates signed by this CA (mTLS)",
  },
  { key: "HEALTH_CHECK_INTERVAL_MS", default: "2000", doc: "how often health pings the database" },
  {
    key: "SECRETS_KEY",
    default: "(none)",
    doc: "base64 of 32 random bytes: encrypts webhook URLs, tokens and signing secrets at rest (AES-256-GCM)",
  },
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

  const timeoutMs = int("FEISHU_TIMEOUT_MS", 5_000, 100, 60_000);
  const sendingLeaseMs = int("DELIVERY_SENDING_LEASE_MS", 600_000, 1_000);
  if (sendingLeaseMs <= 2 * timeoutMs) {
    // A group-bot attempt may make two requests (card, then text): the lease must outlast both.
    throw new ConfigError("DELIVERY_SENDING_LEASE_MS must be longer than 2 × FEISHU_TIMEOUT_MS");
  }
  const deliveryRetryBaseMs = int("DELIVERY_RETRY_BASE_MS", 300_000, 1);
  const deliveryRetryMaxMs = int("DELIVERY_RETRY_MAX_MS", 1_800_000, 1);
  if (deliveryRetryMaxMs < deliveryRetryBaseMs) {
    throw new ConfigError("DELIVERY_RETRY_MAX_MS must not be below DELIVERY_RETRY_BASE_MS");
  }
  const rpcTimeoutMs = int("RPC_TIMEOUT_MS", 6_000, 100);
  if (timeoutMs >= rpcTimeoutMs) {
    // SmartFlow's boundary: provider 5 s < RPC 6 s, so a slow webhook answers provider_timeout, not DeadlineExceeded.
    throw new ConfigError("FEISHU_TIMEOUT_MS must be shorter than RPC_TIMEOUT_MS");
  }
  const [host, port] = parseAddress(read("GRPC_ADDR") ?? "0.0.0.0:9082");
  const certFile = read("TLS_CERT_FILE");
  const keyFile = read("TLS_KEY_FILE");
  const clientCaFile = read("TLS_CLIENT_CA_FILE");
  if (Boolean(certFile) !== Boolean(keyFile))
    throw new ConfigError("TLS_CERT_FILE and TLS_KEY_FILE go together");
  if (clientCaFile && !certFile)
    throw new ConfigError("TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE");
  const legacyToken = read("API_TOKEN_FOR_LEGACY") ?? "false";
  if (legacyToken !== "true" && legacyToken !== "false") {
    throw new ConfigError(`API_TOKEN_FOR_LEGACY must be true or false, got ${JSON.stringify(legacyToken)}`);
  }
  const frontendBaseUrl = read("FRONTEND_BASE_URL") ?? "https://smartflow.example.com";
  if (!/^https?:\/\/[^/\s]+/.test(frontendBaseUrl)) {
    throw new ConfigError(`FRONTEND_BASE_URL must be an http(s) URL, got ${JSON.stringify(frontendBaseUrl)}`);
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
      relayBatchSize: int("OUTBOX_RELAY_BATCH_SIZE", 1_000, 1, 10_000),
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
    feishu: {
      allowedHosts: parseHosts(read("FEISHU_ALLOWED_HOSTS")),
      caFile: read("FEISHU_CA_FILE"),
      timeoutMs,
      frontendBaseUrl,
    },
    delivery: {
      sendingLeaseMs,
      retryBaseMs: deliveryRetryBaseMs,
      retryMaxMs: deliveryRetryMaxMs,
      retryJitterPercent: int("DELIVERY_RETRY_JITTER_PERCENT", 10, 0, 100),
      retryScanIntervalMs: int("DELIVERY_RETRY_SCAN_INTERVAL_MS", 60_000, 10),
      retryBatchSize: int("DELIVERY_RETRY_BATCH_SIZE", 100, 1, 10_000),
      strandedAfterMs: int("DELIVERY_STRANDED_AFTER_MS", 120_000, 1_000),
      concurrency: int("DELIVERY_CONCURRENCY", 128, 1, 10_000),
      claimBatch: int("DELIVERY_CLAIM_BATCH", 100, 1, 10_000),
      ratePerSecond: int("DELIVERY_RATE_PER_SECOND", 5, 1),
      ratePerMinute: int("DELIVERY_RATE_PER_MINUTE", 100, 1),
    },
    api: {
      host,
      port,
      rpcTimeoutMs,
      maxMessageBytes: int("RPC_MAX_MESSAGE_BYTES", 4 * 1024 * 1024, 1_024),
      token: read("API_TOKEN"),
      tokenForLegacy: legacyToken === "true",
      tls: certFile && keyFile ? { certFile, keyFile, ...(clientCaFile ? { clientCaFile } : {}) } : undefined,
      healthCheckIntervalMs: int("HEALTH_CHECK_INTERVAL_MS", 2_000, 10),
    },
    secretsKey: parseSecretsKey(read("SECRETS_KEY")),
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

function parseSecretsKey(raw: string | undefined): Buffer | undefined {
  if (raw === undefined) return undefined;
  const key = Buffer.from(raw, "base64");
  if (key.length !== 32 || key.toString("base64") !== raw) {
    throw new ConfigError(
      "SECRETS_KEY must be the base64 of exactly 32 bytes (e.g. `openssl rand -base64 32`)",
    );
  }
  return key;
}

function parseAddress(raw: string): [string, number] {
  const match = /^(.*):(\d{1,5})$/.exec(raw);
  const host = match?.[1];
  const port = Number(match?.[2]);
  if (!host || port > 65_535) {
    throw new ConfigError(
      `GRPC_ADDR must be host:port (port 0 picks a free one), got ${JSON.stringify(raw)}`,
    );
  }
  return [host.replace(/^\[(.*)\]$/, "$1"), port];
}

function parseHosts(raw: string | undefined): string[] {
  if (raw === undefined) return [...defaultAllowedHosts];
  const hosts = raw
    .split(",")
    .map((host) => host.trim().toLowerCase())
    .filter(Boolean);
  for (const host of hosts) {
    if (!/^[a-z0-9.-]+(:\d{1,5})?$/.test(host) || host.endsWith(":443")) {
      throw new ConfigError(
        `FEISHU_ALLOWED_HOSTS entries must be host or host:port (not :443), got ${JSON.stringify(host)}`,
      );
    }
  }
  return hosts;
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
  // Typed arrays (the secrets key) cannot be frozen; the config never hands them out for writing.
  if (value && typeof value === "object" && !ArrayBuffer.isView(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
