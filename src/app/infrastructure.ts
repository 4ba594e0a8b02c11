import type { Config } from "../config/load-config.ts";
import { createDb, type Db } from "../db/database.ts";
import { type Clock, systemClock } from "../lib/clock.ts";
import { createEventHub, type EventHub } from "../lib/event-hub.ts";
import { createLogger, type Logger } from "../lib/logger.ts";
import { createWakeup, type Wakeup } from "../lib/sleep.ts";
import type { MessageBus } from "../messaging/bus.ts";
import { createKafkaBus } from "../messaging/kafka-bus.ts";
import { createMemoryBus } from "../messaging/memory-bus.ts";
import type { DeliveryEvents } from "../notifications/delivery-events.ts";
import { FEISHU_REQUESTED_EVENT } from "../notifications/feishu-requested-payload.ts";
import type { ObservedEvents } from "../observability/metrics.ts";
import type { OutboxEvents } from "../outbox/outbox-events.ts";
import { createRouteTable, type RouteTable, type ServiceRoute } from "../outbox/routes.ts";
import type { RetentionEvents } from "../retention/retention-job.ts";

export type AppEvents = OutboxEvents & DeliveryEvents & ObservedEvents & RetentionEvents;

/** What every area of the app shares: time, logs, events, the database, the routes and the bus. */
export interface Infrastructure {
  readonly config: Config;
  readonly clock: Clock;
  readonly random: () => number;
  readonly logger: Logger;
  readonly events: EventHub<AppEvents>;
  readonly db: Db;
  readonly routes: RouteTable;
  /** This service's outbox: table, topic and consumer group. */
  readonly route: ServiceRoute;
  readonly bus: MessageBus;
  /** Wakes this process's relay when a row is enqueued or replayed here. */
  readonly relayWakeup: Wakeup;
}

export interface InfrastructureOptions {
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly random?: () => number;
  readonly bus?: MessageBus;
}

/** The event types whose outbox is this service's. */
const eventOwners = { [FEISHU_REQUESTED_EVENT]: "notification" };

export function createInfrastructure(config: Config, options: InfrastructureOptions): Infrastructure {
  const logger = options.logger ?? createLogger(config.logLevel).child({ service: "smartflow-notification" });
  const routes = createRouteTable(config.outbox.routeOverrides, eventOwners);
  const events = createEventHub<AppEvents>();
  const onLag = (topic: string, partition: number, lag: number) =>
    events.emit("consumer:lag", { topic, partition, lag });
  return {
    config,
    clock: options.clock ?? systemClock,
    random: options.random ?? Math.random,
    logger,
    events,
    db: createDb(config.database.target, config.database.poolSize, config.database.timeZone),
    routes,
    route: routes.service("notification"),
    bus: options.bus ?? createBus(config, logger, onLag),
    relayWakeup: createWakeup(),
  };
}

/** Kafka when brokers are configured; else the in-process bus (the embedded default). */
function createBus(
  config: Config,
  logger: Logger,
  onLag: (topic: string, partition: number, lag: number) => void,
): MessageBus {
  const { kafka, outbox } = config;
  return kafka.brokers.length > 0
    ? createKafkaBus({
        brokers: kafka.brokers,
        clientId: kafka.clientId,
        logger: logger.child({ component: "kafka" }),
        partitionsConcurrently: kafka.partitionsConcurrently,
        maxBatch: outbox.consumerBatchSize,
        connectTimeoutMs: kafka.connectTimeoutMs,
        sessionTimeoutMs: kafka.sessionTimeoutMs,
        onLag,
      })
    : createMemoryBus({
        logger: logger.child({ component: "memory-bus" }),
        defaultPartitions: outbox.topicPartitions,
        maxBatch: outbox.consumerBatchSize,
      });
}
