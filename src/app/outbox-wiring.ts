import { squareBackoffMs } from "../lib/backoff.ts";
import { createClaimSweeper } from "../outbox/claim-sweeper.ts";
import { createEnqueuer, type Enqueuer } from "../outbox/enqueue.ts";
import { createOutboxConsumer } from "../outbox/outbox-consumer.ts";
import type { OutboxHandler } from "../outbox/outbox-handler.ts";
import { createOutboxRelay } from "../outbox/outbox-relay.ts";
import { createConsumerStore } from "../outbox/store/consumer-store.ts";
import { createOutboxOperations, type OutboxOperations } from "../outbox/store/operations-store.ts";
import { outboxTable } from "../outbox/store/outbox-table.ts";
import { createRelayStore } from "../outbox/store/relay-store.ts";
import { createRowOperations, type RowOperations } from "../outbox/store/row-operations.ts";
import { createSweeperStore } from "../outbox/store/sweeper-store.ts";
import { createTopicKeeper } from "../outbox/topic-keeper.ts";
import type { Infrastructure } from "./infrastructure.ts";

export interface OutboxArea {
  readonly enqueuer: Enqueuer;
  readonly rowOperations: RowOperations;
  readonly operations: OutboxOperations;
  readonly relay: ReturnType<typeof createOutboxRelay>;
  readonly sweeper: ReturnType<typeof createClaimSweeper>;
  readonly topicKeeper: ReturnType<typeof createTopicKeeper>;
  readonly consumer: ReturnType<typeof createOutboxConsumer>;
}

/** The outbox of this service's route: its stores over the one table, the relay, the sweeper, the consumer. */
export function wireOutbox(infra: Infrastructure, handlers: readonly OutboxHandler[]): OutboxArea {
  const { config, db, route, bus, clock, logger, events, relayWakeup } = infra;
  const { outbox } = config;
  const table = outboxTable(db.kysely, db.traits, route.table, (failures) =>
    squareBackoffMs(failures, outbox.retryBaseMs, outbox.retryMaxMs),
  );
  const component = (name: string) => logger.child({ component: name });
  return {
    enqueuer: createEnqueuer({
      routes: infra.routes,
      traits: db.traits,
      now: () => clock.now(),
      defaultMaxRetry: outbox.maxRetry,
      onEnqueued: () => relayWakeup.notify(),
    }),
    rowOperations: createRowOperations(table),
    operations: createOutboxOperations(table),
    relay: createOutboxRelay({
      store: createRelayStore(table),
      bus,
      route,
      clock,
      logger: component("outbox-relay"),
      events,
      wakeup: relayWakeup,
      publishTimeoutMs: outbox.publishTimeoutMs,
      maxMessageBytes: outbox.guards.maxMessageBytes,
      options: { batchSize: outbox.relayBatchSize, pollIntervalMs: outbox.relayPollIntervalMs },
    }),
    sweeper: createClaimSweeper({
      store: createSweeperStore(table),
      clock,
      logger: component("outbox-sweeper"),
      events,
      options: {
        staleAfterMs: outbox.staleClaimMs,
        // A claim waits for the previous batch's publish, then makes its own: two publish timeouts at most.
        unackedAfterMs: 2 * outbox.publishTimeoutMs + 1_000,
        maxAgeMs: outbox.claimedMaxAgeMs,
        intervalMs: outbox.sweepIntervalMs,
        batchSize: 500,
      },
    }),
    topicKeeper: createTopicKeeper({
      bus,
      topic: route.topic,
      partitions: outbox.topicPartitions,
      logger: component("outbox-topic"),
    }),
    consumer: createOutboxConsumer({
      store: createConsumerStore(table),
      bus,
      route,
      handlers,
      clock,
      logger: component("outbox-consumer"),
      events,
      maxCrashes: outbox.guards.maxCrashes,
    }),
  };
}
