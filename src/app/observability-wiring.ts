import { createMetrics, type Metrics } from "../observability/metrics.ts";
import { createProbeServer, type ProbeServer } from "../observability/probe-server.ts";
import type { ApiArea } from "./api-wiring.ts";
import type { DeliveryArea } from "./delivery-wiring.ts";
import type { Infrastructure } from "./infrastructure.ts";
import type { OutboxArea } from "./outbox-wiring.ts";

/** A scrape waits this long for the stores' gauges, then answers with the last values. */
export const METRICS_POLL_TIMEOUT_MS = 1_000;

export interface ObservabilityArea {
  readonly metrics: Metrics;
  /** The operators' listener (`METRICS_ADDR`); undefined when it is turned off. */
  readonly probes: ProbeServer | undefined;
}

/**
 * Metrics over the app's events and stores, and the listener serving them with the probes: `/livez` while
 * every loop runs, `/readyz` while the API is open and gRPC health says SERVING (the same state).
 */
export function wireObservability(
  infra: Infrastructure,
  areas: { readonly outbox: OutboxArea; readonly delivery: DeliveryArea; readonly api: ApiArea },
  state: { readonly live: () => boolean; readonly apiOpen: () => boolean },
): ObservabilityArea {
  const { config, clock, logger, events } = infra;
  const { outbox, delivery, api } = areas;
  const metrics = createMetrics({
    events,
    sources: {
      outbox: () => outbox.operations.stats(clock.now()),
      records: () => delivery.records.countByStatus(),
      deliveryBacklog: () => delivery.dispatcher.backlog(),
    },
    logger: logger.child({ component: "metrics" }),
    pollTimeoutMs: METRICS_POLL_TIMEOUT_MS,
  });
  const address = config.metrics.address;
  const probes = address
    ? createProbeServer({
        host: address.host,
        port: address.port,
        probes: {
          metrics: () => metrics.scrape(),
          live: state.live,
          ready: () => state.apiOpen() && api.health.isServing(),
        },
        logger: logger.child({ component: "metrics" }),
      })
    : undefined;
  return { metrics, probes };
}
