import { crashSpec } from "./crash-spec.ts";
import { family, setting } from "./setting.ts";
import { integer, readRouteOverrides } from "./value-parsers.ts";

/** The outbox keys (`config.outbox`): relay, sweeper and consumer; a group of the spec table (config-spec.ts). */
export const outboxSpec = {
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
  maxRetry: setting("OUTBOX_MAX_RETRY", "20", integer(1, 1_000), "`max_retry` of rows this service enqueues"),
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
  guards: crashSpec,
  consumerBatchSize: setting(
    "OUTBOX_CONSUMER_BATCH_SIZE",
    "500",
    integer(1, 10_000),
    "messages handled (and committed) together",
  ),
};
