import { rateLimitSpec } from "./rate-limit-spec.ts";
import { optional, setting } from "./setting.ts";
import { hostList, httpUrl, integer, text } from "./value-parsers.ts";

/** The webhook and delivery keys (`config.feishu`, `config.delivery`), groups of the spec table (config-spec.ts). */
export const feishuSpec = {
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
};

export const deliverySpec = {
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
  rateLimit: rateLimitSpec,
};
