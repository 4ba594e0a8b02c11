import type { ApiServer } from "./api/api-server.ts";
import type { HealthState } from "./api/health.ts";
import type { ServiceBinding } from "./api/rpc-binding.ts";
import { type ApiArea, wireApi } from "./app/api-wiring.ts";
import { type DeliveryArea, wireDelivery } from "./app/delivery-wiring.ts";
import {
  type AppEvents,
  createInfrastructure,
  type Infrastructure,
  type InfrastructureOptions,
} from "./app/infrastructure.ts";
import { feishuRequestedOutboxHandler } from "./app/outbox-handler-adapter.ts";
import { type OutboxArea, wireOutbox } from "./app/outbox-wiring.ts";
import { wireRetention } from "./app/retention-wiring.ts";
import { warnIfRowsLookAhead } from "./app/time-zone-check.ts";
import type { Config } from "./config/load-config.ts";
import type { Db } from "./db/database.ts";
import { migrateToLatest } from "./db/migrations.ts";
import { describeError } from "./lib/errors.ts";
import type { EventHub } from "./lib/event-hub.ts";
import type { Logger } from "./lib/logger.ts";
import { TimeoutError, withTimeout } from "./lib/sleep.ts";
import type { MessageBus } from "./messaging/bus.ts";
import type { ChannelService } from "./notifications/channel-service.ts";
import type { DeliveryDispatcher } from "./notifications/delivery-dispatcher.ts";
import type { DeliveryProvider } from "./notifications/ports/delivery-provider.ts";
import type { RecordStore } from "./notifications/ports/record-store.ts";
import type { RetryLoop } from "./notifications/retry-loop.ts";
import type { createClaimSweeper } from "./outbox/claim-sweeper.ts";
import type { Enqueuer } from "./outbox/enqueue.ts";
import type { OutboxHandler } from "./outbox/outbox-handler.ts";
import type { RouteTable, ServiceRoute } from "./outbox/routes.ts";
import type { RowOperations } from "./outbox/store/row-operations.ts";
import type { RetentionJob } from "./retention/retention-job.ts";

export type { AppEvents } from "./app/infrastructure.ts";

export interface AppOptions extends InfrastructureOptions {
  /** The outbox handlers this process runs (default: the notification.feishu.requested handler). */
  readonly handlers?: readonly OutboxHandler[];
  /** Replaces the Feishu provider (benchmarks of the pipeline without HTTP). */
  readonly provider?: DeliveryProvider;
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
  /** SmartFlow's row operations on this service's outbox (`markDead`, `consumeAndMarkConsumed`). */
  readonly outbox: RowOperations;
  readonly sweeper: ReturnType<typeof createClaimSweeper>;
  /** Deletes final rows past their retention (RETENTION_*). */
  readonly retention: RetentionJob;
  readonly records: RecordStore;
  readonly channelService: ChannelService;
  readonly dispatcher: DeliveryDispatcher;
  readonly retryLoop: RetryLoop;
  readonly health: HealthState;
  readonly api: ApiServer;
  /** The services `api` serves. */
  readonly apiBindings: readonly ServiceBinding[];
  /** The API's port once started (the configured one, or the one picked for port 0). */
  apiPort(): number;
  /** Migrates the database, starts the loops, then opens the API. */
  start(): Promise<void>;
  /** Staged shutdown: stop the loops and let in-flight work finish (within the grace time), then close. */
  stop(): Promise<void>;
}

/**
 * The composition root: the only place that knows every folder. Each area is wired in src/app/ (the
 * infrastructure, delivery, the outbox, the API); this file runs them: `start` and the staged `stop`.
 */
export function createApp(config: Config, options: AppOptions = {}): App {
  const infra = createInfrastructure(config, options);
  const delivery = wireDelivery(infra, options.provider);
  const handlers = options.handlers ?? [feishuRequestedOutboxHandler(delivery.requestedHandler)];
  const outbox = wireOutbox(infra, handlers);
  const api = wireApi(infra, outbox, delivery);
  const retention = wireRetention(infra);
  const run: Running = { infra, delivery, outbox, api, retention, loops: new AbortController(), running: [] };
  let apiPort = config.api.address.port;
  let stopping: Promise<void> | undefined;
  return {
    config,
    logger: infra.logger,
    db: infra.db,
    bus: infra.bus,
    routes: infra.routes,
    route: infra.route,
    events: infra.events,
    enqueuer: outbox.enqueuer,
    outbox: outbox.rowOperations,
    sweeper: outbox.sweeper,
    retention,
    records: delivery.records,
    channelService: delivery.channelService,
    dispatcher: delivery.dispatcher,
    retryLoop: delivery.retryLoop,
    health: api.health,
    api: api.server,
    apiBindings: api.bindings,
    apiPort: () => apiPort,
    async start() {
      apiPort = await start(run);
    },
    stop() {
      stopping ??= drainAndClose(run);
      return stopping;
    },
  };
}

interface Running {
  readonly infra: Infrastructure;
  readonly delivery: DeliveryArea;
  readonly outbox: OutboxArea;
  readonly api: ApiArea;
  readonly retention: RetentionJob;
  readonly loops: AbortController;
  readonly running: Promise<void>[];
}

/** Migrates, starts every loop, then opens the API; returns the API's port. */
async function start({ infra, delivery, outbox, api, retention, loops, running }: Running): Promise<number> {
  const { db, route, bus, logger } = infra;
  const applied = await migrateToLatest(db.kysely, db.traits, { outbox: route.table });
  logger.info("database ready", { dialect: db.traits.dialect, migrationsApplied: applied });
  const { config, clock } = infra;
  await warnIfRowsLookAhead(
    db,
    [route.table, "notification_records"],
    clock.now(),
    config.database.timeZone,
    logger,
  );
  const signal = loops.signal;
  const guard = (name: string, loop: Promise<void>) =>
    loop.catch((error: unknown) => {
      logger.error(`${name} crashed`, { error: describeError(error) });
    });
  // The relay never waits on the topic (publishing creates it too); only consuming does.
  const topicReady = outbox.topicKeeper.run(signal);
  running.push(
    guard("outbox relay", outbox.relay.run(signal)),
    guard("outbox sweeper", outbox.sweeper.run(signal)),
    guard("delivery dispatcher", delivery.dispatcher.run(signal)),
    guard("retry loop", delivery.retryLoop.run(signal)),
    guard("database health", api.databaseWatch.run(signal)),
    guard("retention", retention.run(signal)),
    guard(
      "outbox consumer",
      topicReady.then(() => (signal.aborted ? undefined : outbox.consumer.run(signal))),
    ),
  );
  const port = await api.server.listen();
  logger.info("smartflow-notification started", {
    bus: bus.kind,
    table: route.table,
    topic: route.topic,
    group: route.groupId,
  });
  return port;
}

/** What closing the bus, the HTTPS pool and the database may take once the grace time is over. */
export const SHUTDOWN_CLOSE_MARGIN_MS = 2_000;

/**
 * Staged shutdown (weakness 18), one budget: NOT_SERVING at once; the API stops accepting and lets its calls
 * finish while the loops drain theirs, concurrently; at `SHUTDOWN_GRACE_MS` after the start, the API
 * destroys the connections left (an idle one, a half-sent request) and the loops are no longer waited for;
 * the HTTPS pool is destroyed (a webhook that hangs is cut off); then the bus and the database close, each
 * within `SHUTDOWN_CLOSE_MARGIN_MS`. So the whole takes at most the grace time plus that margin (twice).
 * Work that did not finish stays claimable (uncommitted offsets, claimed rows, sending leases).
 */
async function drainAndClose({ infra, delivery, api, loops, running }: Running): Promise<void> {
  const { config, logger, bus, db } = infra;
  const graceMs = config.shutdownGraceMs;
  logger.info("shutting down: NOT_SERVING, closing the API, draining loops", { graceMs });
  api.health.setDraining();
  loops.abort();
  const [, drained] = await Promise.all([
    api.server.close(graceMs),
    settlesWithin(Promise.all(running), graceMs),
  ]);
  if (!drained) logger.warn("shutdown grace time ran out; unfinished work stays claimable", { graceMs });
  delivery.httpsClient.close();
  await closeWithin("the bus", bus.close(), logger);
  await closeWithin("the database", db.close(), logger);
  logger.info("shutdown complete");
}

/** Whether `work` settled within `ms` (a rejection counts: it is over); it is not waited for after that. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  try {
    await withTimeout(work, ms, "shutdown step");
    return true;
  } catch (error) {
    return !(error instanceof TimeoutError);
  }
}

async function closeWithin(what: string, closing: Promise<unknown>, logger: Logger) {
  try {
    await withTimeout(closing, SHUTDOWN_CLOSE_MARGIN_MS, `closing ${what}`);
  } catch (error) {
    logger.warn(`${what} did not close cleanly`, { error: describeError(error) });
  }
}
