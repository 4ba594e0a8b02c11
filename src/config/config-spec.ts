import { apiConnectionSpec } from "./api-connection-spec.ts";
import { retentionSpec } from "./retention-spec.ts";
import { family, optional, setting } from "./setting.ts";
import {
  address,
  boolean,
  brokerList,
  databaseTarget,
  hostList,
  httpUrl,
  integer,
  oneOf,
  readRouteOverrides,
  secretsKey,
  text,
  timeZone,
} from "./value-parsers.ts";

/**
 * Every configuration key, once: its environment name, default, parser and meaning. The config's type is
 * derived from this table (`Config` in load-config.ts), the README's table is generated from it
 * (`scripts/config-table.ts`), and a unit test checks that the two agree. Adding a key is adding a row.
 * Rules that tie several keys together are in load-config.ts (`crossChecks`).
 */
export const configSpec = {
  logLevel: setting(
    "LOG_LEVEL",
    "info",
    oneOf(["debug", "info", "warn", "error", "silent"]),
    "debug, info, warn, error or silent",
  ),
  database: {
    target: setting(
      "DATABASE_URL",
      "sqlite:data/smartflow-notification.sqlite",
      databaseTarget,
      "`mysql://user:pass@host:port/db` (production) or `sqlite:<path>` / `sqlite::memory:` (embedded)",
    ),
    poolSize: setting("DATABASE_POOL_SIZE", "10", integer(1, 500), "MySQL connections in the pool"),
    timeZone: setting(
      "DATABASE_TIME_ZONE",
      "local",
      timeZone,
      "zone of the wall-clock times in MySQL `datetime` columns: `local` (this process's, as Go's `loc=Local`) or an IANA name (`Asia/Shanghai`); must be the producers' zone",
    ),
  },
  kafka: {
    brokers: setting(
      "KAFKA_BROKERS",
      "",
      brokerList,
      "comma-separated `host:port`; empty runs the in-process bus",
      "(empty)",
    ),
    clientId: setting("KAFKA_CLIENT_ID", "smartflow-notification", text, "Kafka client id"),
    connectTimeoutMs: setting("KAFKA_CONNECT_TIMEOUT_MS", "3000", integer(100), "Kafka connection timeout"),
    sessionTimeoutMs: setting(
      "KAFKA_SESSION_TIMEOUT_MS",
      "10000",
      integer(6_000, 300_000),
      "consumer group session: a member silent this long is dropped; a restarted instance waits this long to get its partitions back",
    ),
    partitionsConcurrently: setting(
      "KAFKA_PARTITIONS_CONCURRENTLY",
      "3",
      integer(1, 1_000),
      "partitions of the topic handled at once",
    ),
  },
  outbox: {
    routeOverrides: family(
      "OUTBOX_SERVICES_<SERVICE>_{TABLE,TOPIC,GROUP_ID}",
      "`<service>_outbox_messages`, `smartflow.<service>.outbox`, `smartflow-<service>-outbox-consumer`",
      readRouteOverrides,
      "route overrides (SERVICE in upper case, `-` as `_`, e.g. `OUTBOX_SERVICES_NOTIFICATION_TABLE`)",
    ),
    topicPartitions: setting(
      "OUTBOX_TOPIC_PARTITIONS",
      "3",
      integer(1, 10_000),
      "partitions of a topic the relay creates",
    ),
    relayBatchSize: setting(
      "OUTBOX_RELAY_BATCH_SIZE",
      "1000",
      integer(1, 10_000),
      "rows claimed and published per batch",
    ),
    relayPollIntervalMs: setting(
      "OUTBOX_RELAY_POLL_INTERVAL_MS",
      "50",
      integer(1),
      "idle relay's wait between scans",
    ),
    publishTimeoutMs: setting("OUTBOX_PUBLISH_TIMEOUT_MS", "10000", integer(100), "timeout of one publish"),
    maxRetry: setting(
      "OUTBOX_MAX_RETRY",
      "20",
      integer(1, 1_000),
      "`max_retry` of rows this service enqueues",
    ),
    retryBaseMs: setting("OUTBOX_RETRY_BASE_MS", "1000", integer(1), "outbox backoff is base × n², capped"),
    retryMaxMs: setting("OUTBOX_RETRY_MAX_MS", "100000", integer(1), "cap of the outbox backoff"),
    staleClaimMs: setting(
      "OUTBOX_STALE_PUBLISHED_MS",
      "600000",
      integer(1_000),
      "a row claimed by a relay (status `published`) this long is re-queued",
    ),
    claimedMaxAgeMs: setting(
      "OUTBOX_CLAIMED_MAX_AGE_MS",
      "86400000",
      integer(60_000),
      "such a row created longer ago than this is `dead` (with its age) instead of re-queued",
    ),
    sweepIntervalMs: setting(
      "OUTBOX_SWEEP_INTERVAL_MS",
      "30000",
      integer(10),
      "how often the sweeper looks for such rows",
    ),
    consumerBatchSize: setting(
      "OUTBOX_CONSUMER_BATCH_SIZE",
      "500",
      integer(1, 10_000),
      "messages handled (and committed) together",
    ),
  },
  feishu: {
    allowedHosts: setting(
      "FEISHU_ALLOWED_HOSTS",
      "feishu.cn,www.feishu.cn,open.feishu.cn,open.larksuite.com",
      hostList,
      "webhook hosts accepted (`host` means port 443; `host:port` for others)",
    ),
    caFile: optional("FEISHU_CA_FILE", text, "an extra CA certificate (PEM) trusted for webhook TLS"),
    timeoutMs: setting(
      "FEISHU_TIMEOUT_MS",
      "5000",
      integer(100, 60_000),
      "timeout of one webhook request (below the 6 s RPC deadline)",
    ),
    frontendBaseUrl: setting(
      "FRONTEND_BASE_URL",
      "https://smartflow.example.com",
      httpUrl,
      "base of the action URL in messages",
    ),
  },
  delivery: {
    sendingLeaseMs: setting(
      "DELIVERY_SENDING_LEASE_MS",
      "600000",
      integer(1_000),
      "how long a sender owns a record; must exceed 2 × FEISHU_TIMEOUT_MS",
    ),
    retryBaseMs: setting(
      "DELIVERY_RETRY_BASE_MS",
      "300000",
      integer(1),
      "first retry delay (doubles per attempt)",
    ),
    retryMaxMs: setting("DELIVERY_RETRY_MAX_MS", "1800000", integer(1), "longest retry delay"),
    retryJitterPercent: setting(
      "DELIVERY_RETRY_JITTER_PERCENT",
      "10",
      integer(0, 100),
      "random extra on each retry delay",
    ),
    retryScanIntervalMs: setting(
      "DELIVERY_RETRY_SCAN_INTERVAL_MS",
      "60000",
      integer(10),
      "how often the retry loop scans",
    ),
    retryBatchSize: setting(
      "DELIVERY_RETRY_BATCH_SIZE",
      "100",
      integer(1, 10_000),
      "records the retry loop takes per scan",
    ),
    strandedAfterMs: setting(
      "DELIVERY_STRANDED_AFTER_MS",
      "120000",
      integer(1_000),
      "a `pending` record untouched this long is retried",
    ),
    maxAgeMs: setting(
      "DELIVERY_MAX_AGE_MS",
      "86400000",
      integer(60_000),
      "a record the retry scan finds, created longer ago than this, is `dead` (`expired`) instead of sent",
    ),
    concurrency: setting(
      "DELIVERY_CONCURRENCY",
      "128",
      integer(1, 10_000),
      "webhook requests in flight at once",
    ),
    claimBatch: setting("DELIVERY_CLAIM_BATCH", "100", integer(1, 10_000), "records claimed per UPDATE"),
    ratePerSecond: setting(
      "DELIVERY_RATE_PER_SECOND",
      "5",
      integer(1),
      "sends per second per destination (Feishu: 5)",
    ),
    ratePerMinute: setting(
      "DELIVERY_RATE_PER_MINUTE",
      "100",
      integer(1),
      "sends per minute per destination (Feishu: 100)",
    ),
  },
  api: {
    address: setting("GRPC_ADDR", "0.0.0.0:9082", address, "the API's one port: gRPC, Connect and gRPC-Web"),
    rpcTimeoutMs: setting(
      "RPC_TIMEOUT_MS",
      "6000",
      integer(100),
      "server deadline of a call (a client's shorter one wins)",
    ),
    maxMessageBytes: setting("RPC_MAX_MESSAGE_BYTES", "4194304", integer(1_024), "largest request accepted"),
    token: optional("API_TOKEN", text, "bearer token callers must send; the operations service requires it"),
    tokenForLegacy: setting(
      "API_TOKEN_FOR_LEGACY",
      "false",
      boolean,
      "also require API_TOKEN on smartflow.notification.Notification",
    ),
    tlsCertFile: optional("TLS_CERT_FILE", text, "serve TLS with this certificate (PEM); needs TLS_KEY_FILE"),
    tlsKeyFile: optional("TLS_KEY_FILE", text, "the certificate's private key (PEM)"),
    tlsClientCaFile: optional(
      "TLS_CLIENT_CA_FILE",
      text,
      "require client certificates signed by this CA (mTLS)",
    ),
    healthCheckIntervalMs: setting(
      "HEALTH_CHECK_INTERVAL_MS",
      "2000",
      integer(10),
      "how often health pings the database",
    ),
    connections: apiConnectionSpec,
  },
  secretsKey: optional(
    "SECRETS_KEY",
    secretsKey,
    "base64 of 32 random bytes: encrypts webhook URLs, tokens and signing secrets at rest (AES-256-GCM)",
  ),
  retention: retentionSpec,
  shutdownGraceMs: setting(
    "SHUTDOWN_GRACE_MS",
    "15000",
    integer(0),
    "the shutdown budget: calls and loops drain within it, then what is left is cut off (closing the bus and the database takes up to 2 s more each)",
  ),
};
