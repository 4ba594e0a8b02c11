import { setting } from "./setting.ts";
import { brokerList, databaseTarget, integer, text, timeZone } from "./value-parsers.ts";

/** The database and Kafka keys (`config.database`, `config.kafka`), groups of the spec table (config-spec.ts). */
export const databaseSpec = {
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
};

export const kafkaSpec = {
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
};
