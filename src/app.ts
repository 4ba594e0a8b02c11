import { type ApiServer, createApiServer } from "./api/api-server.ts";
import { createHealthState, type HealthState } from "./api/health.ts";
import { notificationBinding } from "./api/notification-handlers.ts";
import { opsBinding } from "./api/ops-handlers.ts";
import { createFeishuChannel } from "./channels/feishu/feishu-channel.ts";
import { createHttpsClient } from "./channels/feishu/https-client.ts";
import type { Config } from "./config/load-config.ts";
import { createDb, type Db } from "./db/database.ts";
import { migrateToLatest } from "./db/migrations.ts";
import { brokerRetry, createBackoff, exponentialBackoffMs, squareBackoffMs } from "./lib/backoff.ts";
import { type Clock, systemClock } from "./lib/clock.ts";
import { describeError } from "./lib/errors.ts";
import { createEventHub, type EventHub } from "./lib/event-hub.ts";
import { createLogger, type Logger } from "./lib/logger.ts";
import { createRateLimiter } from "./lib/rate-limiter.ts";
import { createSecretBox } from "./lib/secret-box.ts";
import { createWakeup, sleep, withTimeout } from "./lib/sleep.ts";
import type { MessageBus } from "./messaging/bus.ts";
import { createKafkaBus } from "./messaging/kafka-bus.ts";
import { createMemoryBus } from "./messaging/memory-bus.ts";
import { type ChannelService, createChannelService } from "./notifications/channel-service.ts";
import { createChannelStore } from "./notifications/channel-store.ts";
import type { DeliveryChannel } from "./notifications/delivery-channel.ts";
import { createDeliveryDispatcher, type DeliveryDispatcher } from "./notifications/delivery-dispatcher.ts";
import type { DeliveryEvents } from "./notifications/delivery-events.ts";
import { createFeishuRequestedHandler } from "./notifications/feishu-requested-handler.ts";
import { createNotificationRequests } from "./notifications/notification-requests.ts";
import { createRecordStore, type RecordStore } from "./notifications/record-store.ts";
import { createRetryLoop } from "./notifications/retry-loop.ts";
import { createEnqueuer, type Enqueuer } from "./outbox/enqueue.ts";
import { createOutboxConsumer, type OutboxHandler } from "./outbox/outbox-consumer.ts";
import type { OutboxEvents } from "./outbox/outbox-events.ts";
import { createOutboxRelay } from "./outbox/outbox-relay.ts";
import { createOutboxStore, type OutboxStore } from "./outbox/outbox-store.ts";
import { createPublishedSweeper } from "./outbox/published-sweeper.ts";
import { createRouteTable, type RouteTable, type ServiceRoute } from "./outbox/routes.ts";

export type AppEvents = OutboxEvents & DeliveryEvents;

export interface AppOptions {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** The outbox handlers this process runs (default: the notification.feishu.requested handler). */
  readonly handlers?: readonly OutboxHandler[];
  /** Replaces the Feishu provider (benchmarks of the pipeline without HTTP). */
  readonly provider?: DeliveryChannel;
  readonly random?: () => number;
  /** Replaces the bus chosen from the config (tests use this to share one in-process bus). */
  readonly bus?: MessageBus;
}

export interface App {
  readonly config: Config;
  readonly logger: Logger;
  readonly db: Db;
  readonly bus: MessageBus;
  readonly routes: RouteTable;
  readonly route: ServiceRoute;
  readonly events: EventHub<AppEvents>;
  readonly enqueuer: Enqueuer;
  readonly outbox: OutboxStore;
  readonly sweeper: ReturnType<typeof createPublishedSweeper>;
  readonly records: RecordStore;
  readonly channelService: ChannelService;
  readonly dispatcher: DeliveryDispatcher;
  readonly retryLoop: ReturnType<typeof createRetryLoop>;
  readonly health: HealthState;
  readonly api: ApiServer;
  /** The API's port once started (the configured one, or the one picked for port 0). */
  apiPort(): number;
  /** Migrates the database, starts the loops, then opens the API. */
  start(): Promise<void>;
  /** Staged shutdown: stop the loops and let in-flight work finish (within the grace time), then close. */
  stop(): Promise<void>;
}

/** The composition root: the only place that knows every folder. */
export function createApp(config: Config, options: AppOptions = {}): App {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config.logLevel).child({ service: "smartflow-notification" });
  const events = createEventHub<AppEvents>();
  const random = options.random ?? Math.random;
  const db = createDb(config.database.target, config.database.poolSize);
  const routes = createRouteTable(config.outbox.routeOverrides);
  const route = routes.service("notification");
  const bus =
    options.bus ??
    (config.kafka.brokers.length > 0
      ? createKafkaBus({
          brokers: config.kafka.brokers,
          clientId: config.kafka.clientId,
          logger: logger.child({ component: "kafka" }),
          partitionsConcurrently: config.kafka.partitionsConcurrently,
          maxBatch: config.outbox.consumerBatchSize,
          connectTimeoutMs: config.kafka.connectTimeoutMs,
        })
      : createMemoryBus({
          logger: logger.child({ component: "memory-bus" }),
          defaultPartitions: config.outbox.topicPartitions,
          maxBatch: config.outbox.consumerBatchSize,
        }));

  const wakeup = createWakeup();
  const outbox = createOutboxStore({
    db: db.kysely,
    traits: db.traits,
    route,
    retryDelayMs: (failures) =>
      squareBackoffMs(failures, config.outbox.retryBaseMs, config.outbox.retryMaxMs),
  });
  const enqueuer = createEnqueuer({
    routes,
    traits: db.traits,
    now: () => clock.now(),
    defaultMaxRetry: config.outbox.maxRetry,
    onEnqueued: () => wakeup.notify(),
  });
  const relay = createOutboxRelay({
    store: outbox,
    bus,
    clock,
    logger: logger.child({ component: "outbox-relay" }),
    events,
    wakeup,
    options: {
      batchSize: config.outbox.relayBatchSize,
      pollIntervalMs: config.outbox.relayPollIntervalMs,
      publishTimeoutMs: config.outbox.publishTimeoutMs,
    },
  });
  const sweeper = createPublishedSweeper({
    store: outbox,
    clock,
    logger: logger.child({ component: "outbox-sweeper" }),
    events,
    options: {
      staleAfterMs: config.outbox.staleClaimMs,
      intervalMs: config.outbox.sweepIntervalMs,
      batchSize: 500,
    },
  });
  const records = createRecordStore({ db: db.kysely, traits: db.traits });
  const channels = createChannelStore({
    db: db.kysely,
    traits: db.traits,
    secrets: createSecretBox(config.secretsKey),
  });
  if (!config.secretsKey) {
    logger.warn(
      "SECRETS_KEY is not set: webhook URLs, bearer tokens and signing secrets are stored unencrypted",
    );
  }
  const httpsClient = createHttpsClient({
    maxSockets: config.delivery.concurrency,
    maxResponseBytes: 64 * 1024,
    ...(config.feishu.caFile ? { caFile: config.feishu.caFile } : {}),
  });
  const provider =
    options.provider ??
    createFeishuChannel({
      client: httpsClient,
      clock,
      allowedHosts: config.feishu.allowedHosts,
      frontendBaseUrl: config.feishu.frontendBaseUrl,
      timeoutMs: config.feishu.timeoutMs,
    });
  const dispatcher = createDeliveryDispatcher({
    records,
    channels,
    provider,
    limiter: createRateLimiter([
      { limit: config.delivery.ratePerSecond, windowMs: 1_000 },
      { limit: config.delivery.ratePerMinute, windowMs: 60_000 },
    ]),
    clock,
    logger: logger.child({ component: "delivery" }),
    events,
    options: {
      concurrency: config.delivery.concurrency,
      claimBatch: config.delivery.claimBatch,
      leaseMs: config.delivery.sendingLeaseMs,
      retryDelayMs: (failures) =>
        exponentialBackoffMs(
          failures,
          config.delivery.retryBaseMs,
          config.delivery.retryMaxMs,
          config.delivery.retryJitterPercent / 100,
          random,
        ),
    },
  });
  const retryLoop = createRetryLoop({
    records,
    dispatcher,
    clock,
    logger: logger.child({ component: "retry-loop" }),
    events,
    random,
    options: {
      intervalMs: config.delivery.retryScanIntervalMs,
      batchSize: config.delivery.retryBatchSize,
      strandedAfterMs: config.delivery.strandedAfterMs,
      jitterRatio: config.delivery.retryJitterPercent / 100,
    },
  });
  const channelService = createChannelService({
    channels,
    provider,
    clock,
    allowedHosts: config.feishu.allowedHosts,
  });
  const handlers = options.handlers ?? [
    createFeishuRequestedHandler({
      records,
      dispatcher,
      clock,
      logger: logger.child({ component: "feishu-requested" }),
      events,
    }),
  ];

  const consumer = createOutboxConsumer({
    store: outbox,
    bus,
    handlers,
    clock,
    logger: logger.child({ component: "outbox-consumer" }),
    events,
    // Per-event handlers (tests) run this many at once; the notification handler takes whole batches.
    options: { concurrency: 64 },
  });

  const notificationRequests = createNotificationRequests({
    db: db.kysely,
    traits: db.traits,
    enqueuer,
    now: () => clock.now(),
  });
  const bindings = [
    notificationBinding(channelService, config.api.tokenForLegacy),
    opsBinding({
      records,
      outbox,
      requests: notificationRequests,
      dispatcher,
      wakeRelay: () => wakeup.notify(),
      clock,
    }),
  ];
  const health = createHealthState([...bindings.map((b) => b.service.typeName), "grpc.health.v1.Health"]);
  const api = createApiServer({
    options: {
      host: config.api.address.host,
      port: config.api.address.port,
      rpcTimeoutMs: config.api.rpcTimeoutMs,
      maxMessageBytes: config.api.maxMessageBytes,
      ...(config.api.token ? { token: config.api.token } : {}),
      ...tlsOptions(config.api),
    },
    bindings,
    health,
    logger: logger.child({ component: "api" }),
  });
  let apiPort = config.api.address.port;

  /** NOT_SERVING while the database does not answer. */
  async function watchDatabase(signal: AbortSignal) {
    while (!signal.aborted) {
      health.setDatabaseUp(await db.ping());
      await sleep(config.api.healthCheckIntervalMs, signal);
    }
  }

  const loops = new AbortController();
  const running: Promise<void>[] = [];
  let stopping: Promise<void> | undefined;

  /** Creates the topic in the background, retrying until the broker answers; relaying never waits on it. */
  async function keepTopic(signal: AbortSignal) {
    const backoff = createBackoff(brokerRetry);
    while (!signal.aborted) {
      try {
        await bus.ensureTopic(route.topic, config.outbox.topicPartitions);
        return;
      } catch (error) {
        const delay = backoff.failed();
        logger.warn("cannot ensure outbox topic yet", {
          topic: route.topic,
          error: describeError(error),
          delay,
        });
        await sleep(delay, signal);
      }
    }
  }

  const guard = (name: string, loop: Promise<void>) =>
    loop.catch((error: unknown) => {
      logger.error(`${name} crashed`, { error: describeError(error) });
    });

  return {
    config,
    logger,
    db,
    bus,
    routes,
    route,
    events,
    enqueuer,
    outbox,
    sweeper,
    records,
    channelService,
    dispatcher,
    retryLoop,
    health,
    api,
    apiPort: () => apiPort,
    async start() {
      const applied = await migrateToLatest(db.kysely, db.traits, { outbox: route.table });
      logger.info("database ready", { dialect: db.traits.dialect, migrationsApplied: applied });
      const signal = loops.signal;
      // The relay never waits on the topic (publishing creates it too); only consuming does.
      const topicReady = keepTopic(signal);
      running.push(
        guard("outbox relay", relay.run(signal)),
        guard("outbox sweeper", sweeper.run(signal)),
        guard("delivery dispatcher", dispatcher.run(signal)),
        guard("retry loop", retryLoop.run(signal)),
        guard("database health", watchDatabase(signal)),
        guard(
          "outbox consumer",
          topicReady.then(() => (signal.aborted ? undefined : consumer.run(signal))),
        ),
      );
      apiPort = await api.listen();
      logger.info("smartflow-notification started", {
        bus: bus.kind,
        table: route.table,
        topic: route.topic,
        group: route.groupId,
      });
    },
    stop() {
      stopping ??= (async () => {
        logger.info("shutting down: NOT_SERVING, closing the API, draining loops", {
          graceMs: config.shutdownGraceMs,
        });
        health.setDraining();
        await api.close(config.shutdownGraceMs);
        loops.abort();
        try {
          await withTimeout(Promise.all(running), config.shutdownGraceMs, "drain");
        } catch (error) {
          logger.warn("shutdown grace time ran out; unfinished work stays claimable", {
            error: describeError(error),
          });
        }
        await bus.close();
        httpsClient.close();
        await db.close();
        logger.info("shutdown complete");
      })();
      return stopping;
    },
  };
}

function tlsOptions(api: Config["api"]) {
  const { tlsCertFile: certFile, tlsKeyFile: keyFile, tlsClientCaFile: clientCaFile } = api;
  return certFile && keyFile ? { tls: { certFile, keyFile, ...(clientCaFile ? { clientCaFile } : {}) } } : {};
}
