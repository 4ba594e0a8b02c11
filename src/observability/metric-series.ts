import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** Every series' name starts with this (the process and event-loop series keep prom-client's names). */
export const PREFIX = "smartflow_notification_";

/** Publish, provider and RPC latencies: 5 ms to 30 s. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The series this service exports, on a registry of its own (one per app: tests run several in a process).
 * The only file that imports prom-client. Labels are bounded sets: statuses, outcomes, error kinds, method
 * names, partitions; never a user id, a URL or free text.
 */
export function createSeries() {
  const registry = new Registry();
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name: PREFIX + name, help, labelNames, registers: [registry] });
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L>({ name: PREFIX + name, help, labelNames, registers: [registry] });
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Histogram<L>({
      name: PREFIX + name,
      help,
      labelNames,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    });
  collectDefaultMetrics({ register: registry });
  const make = { counter, gauge, histogram };
  return { registry, ...outboxSeries(make), ...deliverySeries(make) };
}

interface Makers {
  counter<L extends string>(name: string, help: string, labelNames?: readonly L[]): Counter<L>;
  gauge<L extends string>(name: string, help: string, labelNames?: readonly L[]): Gauge<L>;
  histogram<L extends string>(name: string, help: string, labelNames?: readonly L[]): Histogram<L>;
}

function outboxSeries({ counter, gauge, histogram }: Makers) {
  return {
    outboxRows: gauge("outbox_rows", "Outbox rows by status (column value; `published` = claimed)", [
      "status",
    ]),
    outboxOldestDue: gauge(
      "outbox_oldest_due_age_seconds",
      "How long the oldest due pending outbox row has been due (0 when none is)",
    ),
    relayBatches: counter("outbox_relay_batches_total", "Batches the relay published (one per topic)"),
    relayRows: counter("outbox_relay_rows_published_total", "Outbox rows the broker acknowledged"),
    relayPublishSeconds: histogram(
      "outbox_relay_publish_duration_seconds",
      "Duration of one publish to the broker",
    ),
    relayErrors: counter("outbox_relay_publish_errors_total", "Rows whose publish failed, by kind", ["kind"]),
    relayDead: counter(
      "outbox_relay_dead_rows_total",
      "Rows the relay marked dead (undecodable or out of retries)",
    ),
    retentionDeleted: counter(
      "retention_deleted_rows_total",
      "Final rows the retention job deleted, by table (the outbox table, notification_records, notification_request_keys)",
      ["table"],
    ),
    sweeperRequeued: counter(
      "outbox_sweeper_requeued_total",
      "Stale claimed rows the sweeper settled, by result (retried, exhausted, expired)",
      ["result"],
    ),
    consumerMessages: counter(
      "outbox_consumer_messages_total",
      "Messages the consumer settled, by outcome (consumed, dead, retried, deferred, skipped, dropped)",
      ["outcome"],
    ),
    consumerDead: counter(
      "outbox_consumer_dead_total",
      "Messages the consumer marked dead, by reason class",
      ["reason_class"],
    ),
    consumerLag: gauge(
      "outbox_consumer_lag_messages",
      "Messages behind the partition's high watermark after the last handled batch (Kafka only)",
      ["topic", "partition"],
    ),
  };
}

function deliverySeries({ counter, gauge, histogram }: Makers) {
  return {
    deliveryAttempts: counter(
      "delivery_attempts_total",
      "Delivery attempts by provider (webhook kind, or none) and outcome",
      ["provider", "outcome"],
    ),
    providerSeconds: histogram("delivery_provider_duration_seconds", "Duration of one delivery attempt", [
      "provider",
    ]),
    records: gauge("delivery_records", "Notification records by status", ["status"]),
    retryQueue: gauge("delivery_retry_queue_records", "Records waiting for a retry (status failed)"),
    deliveryBacklog: gauge(
      "delivery_queue_jobs",
      "Jobs waiting or in flight in this process's delivery queue",
    ),
    leaseRecoveries: counter(
      "delivery_lease_recoveries_total",
      "Sending leases that expired: reclaimed for another attempt, or exhausted (dead)",
      ["kind"],
    ),
    rateLimitWaits: counter(
      "delivery_rate_limit_waits_total",
      "Times the rate limit held a destination's job back",
    ),
    rateLimitWaitSeconds: counter(
      "delivery_rate_limit_wait_seconds_total",
      "Sum of the waits the rate limit asked for",
    ),
    rpcs: counter("rpc_requests_total", "Unary RPCs by method and gRPC code", ["method", "code"]),
    rpcSeconds: histogram("rpc_duration_seconds", "Duration of a unary RPC's handler", ["method"]),
    storesUp: gauge(
      "store_poll_up",
      "1 when the last scrape could read the database's gauges in time, else 0",
    ),
  };
}

export type Series = ReturnType<typeof createSeries>;
