import type { ApiServer } from "./api/api-server.ts";
import type { HealthState } from "./api/health.ts";
import type { ServiceBinding } from "./api/rpc-binding.ts";
import { wireApi } from "./app/api-wiring.ts";
import { wireDelivery } from "./app/delivery-wiring.ts";
import { type AppEvents, createInfrastructure, type InfrastructureOptions } from "./app/infrastructure.ts";
import { drainAndClose, type Running, start } from "./app/lifecycle.ts";
import { wireObservability } from "./app/observability-wiring.ts";
import { feishuRequestedOutboxHandler } from "./app/outbox-handler-adapter.ts";
import { wireOutbox } from "./app/outbox-wiring.ts";
import { wireRetention } from "./app/retention-wiring.ts";
import { createLoopSupervisor, type LoopFailure } from "./app/supervision.ts";
import type { Config } from "./config/load-config.ts";
import type { Db } from "./db/database.ts";
import type { EventHub } from "./lib/event-hub.ts";
import type { Logger } from "./lib/logger.ts";
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
export { SHUTDOWN_CLOSE_MARGIN_MS } from "./app/lifecycle.ts";

export interface AppOptions extends InfrastructureOptions {
  /**
   * The outbox handlers this process runs (default: the notification.feishu.requested handler), or a
   * function of the default ones (a test wraps the real handler).
   */
  readonly handlers?:
    | readonly OutboxHandler[]
    | ((defaults: readonly OutboxHandler[]) => readonly OutboxHandler[]);
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
  /** The metrics and probes listener's port once started; undefined when METRICS_ADDR is empty. */
  metricsPort(): number | undefined;
  /** Resolves when a loop fails for good (health is NOT_SERVING by then); the caller stops the app. */
  loopFailed(): Promise<LoopFailure>;
  /** Migrates the database, starts the loops, then opens the API. */
  start(): Promise<void>;
  /** Staged shutdown: stop the loops and let in-flight work finish (within the grace time), then close. */
  stop(): Promise<void>;
}

/**
 * The composition root: the only place that knows every folder. Each area is wired in src/app/ (the
 * infrastructure, delivery, the outbox, the API); this file assembles them, and app/lifecycle.ts runs them: `start` and the staged `stop`.
 */
export function createApp(config: Config, options: AppOptions = {}): App {
  const infra = createInfrastructure(config, options);
  const delivery = wireDelivery(infra, options.provider);
  const defaults = [feishuRequestedOutboxHandler(delivery.requestedHandler)];
  const handlers =
    typeof options.handlers === "function" ? options.handlers(defaults) : (options.handlers ?? defaults);
  const outbox = wireOutbox(infra, handlers);
  const api = wireApi(infra, outbox, delivery);
  const loops = new AbortController();
  const supervisor = createLoopSupervisor({
    logger: infra.logger,
    stopping: loops.signal,
    onFailure: () => api.health.setDraining(),
  });
  let apiOpen = false;
  const observability = wireObservability(
    infra,
    { outbox, delivery, api },
    { live: supervisor.live, apiOpen: () => apiOpen },
  );
  const retention = wireRetention(infra);
  const run: Running = {
    infra,
    delivery,
    outbox,
    api,
    observability,
    retention,
    supervisor,
    loops,
    running: [],
  };
  let apiPort = config.api.address.port;
  let metricsPort = config.metrics.address?.port;
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
    metricsPort: () => metricsPort,
    loopFailed: () => supervisor.failed,
    async start() {
      metricsPort = await observability.probes?.listen();
      apiPort = await start(run);
      apiOpen = true;
    },
    stop() {
      stopping ??= drainAndClose(run);
      return stopping;
    },
  };
}
