import type { EventHub } from "../lib/event-hub.ts";
import type { Logger } from "../lib/logger.ts";
import { countEvents, type MetricEvents } from "./event-metrics.ts";
import { createSeries } from "./metric-series.ts";
import { createStoreGauges, type GaugeSources } from "./store-gauges.ts";

export type { MetricEvents, ObservedEvents } from "./event-metrics.ts";
export type { GaugeSources } from "./store-gauges.ts";

/**
 * The Prometheus adapter: counters and histograms fed by the app's events, gauges read from the stores at
 * scrape time (within `pollTimeoutMs`), and prom-client's process and event-loop series. The domain and the
 * loops know nothing of it; they only emit events.
 */
export function createMetrics(deps: {
  readonly events: EventHub<MetricEvents>;
  readonly sources: GaugeSources;
  readonly logger: Logger;
  readonly pollTimeoutMs: number;
}) {
  const series = createSeries();
  const unsubscribe = countEvents(deps.events, series);
  const refresh = createStoreGauges({
    sources: deps.sources,
    series,
    timeoutMs: deps.pollTimeoutMs,
    logger: deps.logger,
  });
  return {
    /** The exposition: the stores' gauges refreshed first. */
    async scrape(): Promise<{ contentType: string; text: string }> {
      await refresh();
      return { contentType: series.registry.contentType, text: await series.registry.metrics() };
    },
    close(): void {
      unsubscribe();
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
