import assert from "node:assert/strict";
import { test } from "node:test";
import type { AppEvents } from "../../src/app.ts";
import { createEventHub } from "../../src/lib/event-hub.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { createMetrics, type GaugeSources } from "../../src/observability/metrics.ts";

const P = "smartflow_notification_";

function sample(text: string, name: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

const sources = (over: Partial<GaugeSources> = {}): GaugeSources => ({
  outbox: async () => ({ byStatus: { pending: 3, published: 1, weird: 2 }, oldestDueAgeMs: 1_500 }),
  records: async () => ({ failed: 4, sent: 9 }),
  deliveryBacklog: () => 5,
  ...over,
});

test("each event moves its series; a status the table should not hold counts as `other`", async () => {
  const events = createEventHub<AppEvents>();
  const metrics = createMetrics({ events, sources: sources(), logger: silentLogger, pollTimeoutMs: 1_000 });
  events.emit("relay:published", { ids: [1, 2, 3], topic: "t", durationMs: 20 });
  events.emit("relay:failed", { ids: [4], error: "x", brokerUnavailable: true });
  events.emit("relay:failed", { ids: [5, 6], error: "x", brokerUnavailable: false });
  events.emit("consumer:outcomes", {
    consumed: [1],
    dead: [2, 3],
    retried: [4],
    deferred: [],
    skipped: [5],
    deadByClass: { unreadable: 1, version_mismatch: 1 },
  });
  events.emit("consumer:dropped", { reason: "user 42 said https://x", topic: "t", offset: "7" });
  events.emit("sweeper:requeued", { retried: 2, exhausted: 1, expired: 0 });
  events.emit("retention:deleted", {
    tables: { notification_records: 500, notification_outbox_messages: 3 },
  });
  events.emit("delivery:claimed", { ids: [1, 2], at: 0, leaseRecovered: 1 });
  events.emit("retry:scanned", { found: 0, killed: 2, expired: 0 });
  events.emit("delivery:throttled", { userId: 42n, waitMs: 250, at: 0 });
  events.emit("delivery:attempted", { provider: "group_bot", outcome: "temporary_fail", durationMs: 40 });
  const { text } = await metrics.scrape();
  const expected: Record<string, number> = {
    [`${P}outbox_relay_batches_total`]: 1,
    [`${P}outbox_relay_rows_published_total`]: 3,
    [`${P}outbox_relay_publish_duration_seconds_count`]: 1,
    [`${P}outbox_relay_publish_errors_total{kind="broker_unavailable"}`]: 1,
    [`${P}outbox_relay_publish_errors_total{kind="publish_failed"}`]: 2,
    [`${P}outbox_consumer_messages_total{outcome="dead"}`]: 2,
    [`${P}outbox_consumer_messages_total{outcome="skipped"}`]: 1,
    [`${P}outbox_consumer_messages_total{outcome="dropped"}`]: 1,
    [`${P}outbox_consumer_dead_total{reason_class="version_mismatch"}`]: 1,
    [`${P}outbox_sweeper_requeued_total{result="retried"}`]: 2,
    [`${P}retention_deleted_rows_total{table="notification_records"}`]: 500,
    [`${P}retention_deleted_rows_total{table="notification_outbox_messages"}`]: 3,
    [`${P}delivery_lease_recoveries_total{kind="reclaimed"}`]: 1,
    [`${P}delivery_lease_recoveries_total{kind="exhausted"}`]: 2,
    [`${P}delivery_rate_limit_waits_total`]: 1,
    [`${P}delivery_rate_limit_wait_seconds_total`]: 0.25,
    [`${P}delivery_attempts_total{provider="group_bot",outcome="temporary_fail"}`]: 1,
    [`${P}outbox_rows{status="pending"}`]: 3,
    [`${P}outbox_rows{status="other"}`]: 2,
    [`${P}outbox_oldest_due_age_seconds`]: 1.5,
    [`${P}delivery_retry_queue_records`]: 4,
    [`${P}delivery_queue_jobs`]: 5,
    [`${P}store_poll_up`]: 1,
  };
  for (const [name, value] of Object.entries(expected)) assert.equal(sample(text, name), value, name);
  const labels = text
    .split("\n")
    .filter((line) => line.startsWith(P))
    .flatMap((line) => /\{(.*)\}/.exec(line)?.[1] ?? []);
  for (const forbidden of ["weird", "https://", "42"]) {
    assert.ok(!labels.some((l) => l.includes(forbidden)), `no label holds ${forbidden}`);
  }
  metrics.close();
});

test("a database that does not answer: the scrape answers within the poll timeout, store_poll_up 0", async () => {
  const events = createEventHub<AppEvents>();
  let answer = true;
  const hanging = new Promise<never>(() => undefined);
  const metrics = createMetrics({
    events,
    sources: sources({ records: () => (answer ? sources().records() : hanging) }),
    logger: silentLogger,
    pollTimeoutMs: 50,
  });
  assert.equal(sample((await metrics.scrape()).text, `${P}store_poll_up`), 1);
  answer = false;
  const { text } = await metrics.scrape();
  assert.equal(sample(text, `${P}store_poll_up`), 0);
  assert.equal(sample(text, `${P}delivery_retry_queue_records`), 4, "the last values stay");
  metrics.close();
});
