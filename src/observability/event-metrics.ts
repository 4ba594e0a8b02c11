import type { EventHub } from "../lib/event-hub.ts";
import type { DeliveryEvents } from "../notifications/delivery-events.ts";
import type { OutboxEvents } from "../outbox/outbox-events.ts";
import type { Series } from "./metric-series.ts";

/**
 * Events this adapter needs besides the outbox's and the delivery's: the bus's lag, the API's calls and the
 * retention job's deletions (src/retention emits it with this shape).
 */
export interface ObservedEvents {
  "consumer:lag": { readonly topic: string; readonly partition: number; readonly lag: number };
  "retention:deleted": { readonly tables: Readonly<Record<string, number>> };
  "api:call": { readonly method: string; readonly code: string; readonly seconds: number };
  [name: string]: unknown;
}

export type MetricEvents = OutboxEvents & DeliveryEvents & ObservedEvents;

/**
 * Turns the events the loops already emit into counters and histograms. Every label value comes from a
 * bounded set (statuses, outcomes, kinds, webhook kinds, method names, partitions); ids, user ids, URLs and
 * reasons' text never become labels. Returns the unsubscribe function.
 */
export function countEvents(events: EventHub<MetricEvents>, series: Series): () => void {
  const s = series;
  const offs = [
    events.on("relay:published", ({ ids, durationMs }) => {
      s.relayBatches.inc();
      s.relayRows.inc(ids.length);
      s.relayPublishSeconds.observe(durationMs / 1_000);
    }),
    events.on("relay:failed", ({ ids, brokerUnavailable }) => {
      s.relayErrors.inc({ kind: brokerUnavailable ? "broker_unavailable" : "publish_failed" }, ids.length);
    }),
    events.on("relay:dead", ({ ids }) => s.relayDead.inc(ids.length)),
    events.on("retention:deleted", ({ tables }) => {
      for (const [table, rows] of Object.entries(tables)) s.retentionDeleted.inc({ table }, rows);
    }),
    events.on("sweeper:requeued", ({ retried, exhausted, expired }) => {
      s.sweeperRequeued.inc({ result: "retried" }, retried);
      s.sweeperRequeued.inc({ result: "exhausted" }, exhausted);
      s.sweeperRequeued.inc({ result: "expired" }, expired);
    }),
    events.on("consumer:outcomes", (outcome) => {
      const { consumed, dead, retried, deferred, skipped, deadByClass } = outcome;
      const counts = { consumed, dead, retried, deferred, skipped };
      for (const [name, ids] of Object.entries(counts)) s.consumerMessages.inc({ outcome: name }, ids.length);
      for (const [reasonClass, n] of Object.entries(deadByClass)) {
        s.consumerDead.inc({ reason_class: reasonClass }, n);
      }
    }),
    events.on("consumer:dropped", () => s.consumerMessages.inc({ outcome: "dropped" })),
    events.on("consumer:lag", ({ topic, partition, lag }) => {
      s.consumerLag.set({ topic, partition: String(partition) }, Math.max(0, lag));
    }),
    events.on("delivery:attempted", ({ provider, outcome, durationMs }) => {
      s.deliveryAttempts.inc({ provider, outcome });
      s.providerSeconds.observe({ provider }, durationMs / 1_000);
    }),
    events.on("delivery:claimed", ({ leaseRecovered }) => {
      if (leaseRecovered > 0) s.leaseRecoveries.inc({ kind: "reclaimed" }, leaseRecovered);
    }),
    events.on("retry:scanned", ({ killed }) => {
      if (killed > 0) s.leaseRecoveries.inc({ kind: "exhausted" }, killed);
    }),
    events.on("delivery:throttled", ({ waitMs }) => {
      s.rateLimitWaits.inc();
      s.rateLimitWaitSeconds.inc(waitMs / 1_000);
    }),
    events.on("api:call", countCall(s)),
  ];
  return () => {
    for (const off of offs) off();
  };
}

/**
 * Every RPC passes here: the series' children are kept per method and code (a bounded set: the served
 * methods × the gRPC codes), so a call skips prom-client's label hashing.
 */
function countCall(s: Series) {
  const children = new Map<string, { calls: { inc(): void }; seconds: { observe(value: number): void } }>();
  return ({ method, code, seconds }: ObservedEvents["api:call"]) => {
    const key = `${method} ${code}`;
    let child = children.get(key);
    if (!child) {
      child = { calls: s.rpcs.labels({ method, code }), seconds: s.rpcSeconds.labels({ method }) };
      children.set(key, child);
    }
    child.calls.inc();
    child.seconds.observe(seconds);
  };
}
