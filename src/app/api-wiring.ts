import { type ApiServer, createApiServer } from "../api/api-server.ts";
import { createDatabaseWatch } from "../api/database-watch.ts";
import { createHealthState, type HealthState } from "../api/health.ts";
import { notificationBinding } from "../api/notification-handlers.ts";
import { opsBinding } from "../api/ops-handlers.ts";
import type { ServiceBinding } from "../api/rpc-binding.ts";
import type { Config } from "../config/load-config.ts";
import { createChannelReseal } from "../notifications/sql/channel-reseal.ts";
import type { DeliveryArea } from "./delivery-wiring.ts";
import type { Infrastructure } from "./infrastructure.ts";
import type { OutboxArea } from "./outbox-wiring.ts";
import { wireNotificationRequests } from "./request-wiring.ts";
import { createTransientRetry, retryingPort } from "./transient-ports.ts";

export interface ApiArea {
  /** The services the API serves (tests serve the same handlers on a server with other options). */
  readonly bindings: readonly ServiceBinding[];
  readonly health: HealthState;
  readonly server: ApiServer;
  readonly databaseWatch: ReturnType<typeof createDatabaseWatch>;
}

/** The one-port API: the original service, the operations service, health (with its database watch). */
export function wireApi(infra: Infrastructure, outbox: OutboxArea, delivery: DeliveryArea): ApiArea {
  const { config, db, clock, logger } = infra;
  // Every database step of the operations service retries transient errors.
  const retry = createTransientRetry(logger.child({ component: "ops" }));
  const bindings = [
    notificationBinding(delivery.channelService, config.api.tokenForLegacy),
    opsBinding({
      records: retryingPort(delivery.records, retry),
      outbox: retryingPort(outbox.operations, retry),
      requests: wireNotificationRequests(db, outbox.enqueuer, () => clock.now(), retry),
      deliveries: delivery.dispatcher,
      wakeRelay: () => infra.relayWakeup.notify(),
      clock,
      secrets: retryingPort(createChannelReseal(db.kysely, db.traits, delivery.secrets), retry),
    }),
  ];
  if (!config.api.token) {
    logger.warn("API_TOKEN is not set: the operations service is open to every caller that reaches the port");
  }
  const health = createHealthState([...bindings.map((b) => b.service.typeName), "grpc.health.v1.Health"]);
  const server = createApiServer({
    options: {
      host: config.api.address.host,
      port: config.api.address.port,
      rpcTimeoutMs: config.api.rpcTimeoutMs,
      maxMessageBytes: config.api.maxMessageBytes,
      ...config.api.connections,
      ...(config.api.token ? { token: config.api.token } : {}),
      ...tlsOptions(config.api),
    },
    bindings,
    health,
    logger: logger.child({ component: "api" }),
    onCall: (method, code, seconds) => infra.events.emit("api:call", { method, code, seconds }),
  });
  const databaseWatch = createDatabaseWatch({
    ping: () => db.ping(),
    health,
    intervalMs: config.api.healthCheckIntervalMs,
  });
  return { bindings, health, server, databaseWatch };
}

function tlsOptions(api: Config["api"]) {
  const { tlsCertFile: certFile, tlsKeyFile: keyFile, tlsClientCaFile: clientCaFile } = api;
  return certFile && keyFile ? { tls: { certFile, keyFile, ...(clientCaFile ? { clientCaFile } : {}) } } : {};
}
