import { createFeishuProvider } from "../channels/feishu/feishu-provider.ts";
import { createHttpsClient, type HttpsClient } from "../channels/feishu/https-client.ts";
import { createFeishuWebhookPolicy } from "../channels/feishu/webhook-url.ts";
import { exponentialBackoffMs } from "../lib/backoff.ts";
import { createSecretBox, type SecretBox } from "../lib/secret-box.ts";
import { type ChannelService, createChannelService } from "../notifications/channel-service.ts";
import { createDeliveryDispatcher, type DeliveryDispatcher } from "../notifications/delivery-dispatcher.ts";
import {
  createFeishuRequestedHandler,
  type FeishuRequestedHandler,
} from "../notifications/feishu-requested-handler.ts";
import type { DeliveryProvider } from "../notifications/ports/delivery-provider.ts";
import type { RecordStore } from "../notifications/ports/record-store.ts";
import type { SendBudget } from "../notifications/ports/send-budget.ts";
import { createProcessSendBudget } from "../notifications/process-send-budget.ts";
import { createRetryLoop, type RetryLoop } from "../notifications/retry-loop.ts";
import { createSqlChannelStore } from "../notifications/sql/sql-channel-store.ts";
import { createSqlRecordStore } from "../notifications/sql/sql-record-store.ts";
import { createSqlSendBudget } from "../notifications/sql/sql-send-budget.ts";
import type { Infrastructure } from "./infrastructure.ts";
import { createTransientRetry, retryingPort } from "./transient-ports.ts";

export interface DeliveryArea {
  readonly records: RecordStore;
  readonly channelService: ChannelService;
  readonly dispatcher: DeliveryDispatcher;
  readonly retryLoop: RetryLoop;
  /** The domain's `notification.feishu.requested` handler (outbox-handler-adapter.ts serves it to the consumer). */
  readonly requestedHandler: FeishuRequestedHandler;
  readonly httpsClient: HttpsClient;
  /** Seals and opens the channels' secrets (SECRETS_KEY, and SECRETS_KEY_PREVIOUS while rotating). */
  readonly secrets: SecretBox;
}

/** Records, channels, the Feishu provider, the dispatcher and the retry loop, over the SQL stores. */
export function wireDelivery(infra: Infrastructure, provider?: DeliveryProvider): DeliveryArea {
  const { config, db, clock, logger, events, random } = infra;
  const { delivery, feishu } = config;
  const records = createSqlRecordStore(db.kysely, db.traits, delivery.sendingLeaseMs);
  const secrets = secretBoxOf(infra);
  const channels = createSqlChannelStore(db.kysely, db.traits, secrets);
  const httpsClient = createHttpsClient({
    maxSockets: delivery.concurrency,
    maxResponseBytes: 64 * 1024,
    ...(feishu.caFile ? { caFile: feishu.caFile } : {}),
  });
  const policy = createFeishuWebhookPolicy(feishu.allowedHosts);
  const sender = provider ?? createFeishuProvider({ client: httpsClient, clock, policy, ...feishu });
  const dispatcher = createDeliveryDispatcher({
    records,
    channels,
    provider: sender,
    budget: sendBudget(infra),
    clock,
    logger: logger.child({ component: "delivery" }),
    events,
    options: {
      concurrency: delivery.concurrency,
      claimBatch: delivery.claimBatch,
      leaseMs: delivery.sendingLeaseMs,
      retryDelayMs: (failures) =>
        exponentialBackoffMs(
          failures,
          delivery.retryBaseMs,
          delivery.retryMaxMs,
          delivery.retryJitterPercent / 100,
          random,
        ),
    },
  });
  const retryLoop = createRetryLoop({
    records,
    deliveries: dispatcher,
    clock,
    logger: logger.child({ component: "retry-loop" }),
    events,
    random,
    options: {
      intervalMs: delivery.retryScanIntervalMs,
      batchSize: delivery.retryBatchSize,
      strandedAfterMs: delivery.strandedAfterMs,
      jitterRatio: delivery.retryJitterPercent / 100,
      maxAgeMs: delivery.maxAgeMs,
    },
  });
  return {
    records,
    // The RPCs' channel operations retry transient database errors (the dispatcher has its own backoff).
    channelService: createChannelService({
      channels: retryingPort(channels, createTransientRetry(logger.child({ component: "channels" }))),
      provider: sender,
      policy,
      clock,
    }),
    dispatcher,
    retryLoop,
    requestedHandler: createFeishuRequestedHandler({
      records,
      deliveries: dispatcher,
      clock,
      logger: logger.child({ component: "feishu-requested" }),
      events,
      leaseMs: delivery.sendingLeaseMs,
    }),
    httpsClient,
    secrets,
  };
}

/** Feishu's per-destination limits, kept in this process or in the database for every instance. */
function sendBudget({ config, db }: Infrastructure): SendBudget {
  const { ratePerSecond, ratePerMinute, rateLimit } = config.delivery;
  const windows = [
    { limit: ratePerSecond, windowMs: 1_000 + rateLimit.marginMs },
    { limit: ratePerMinute, windowMs: 60_000 + rateLimit.marginMs },
  ];
  const scope =
    rateLimit.scope === "auto" ? (db.traits.dialect === "mysql" ? "database" : "process") : rateLimit.scope;
  return scope === "database"
    ? createSqlSendBudget(db.kysely, db.traits, windows)
    : createProcessSendBudget(windows);
}

function secretBoxOf({ config, logger }: Infrastructure): SecretBox {
  if (!config.secretsKey) {
    logger.warn(
      "SECRETS_KEY is not set: webhook URLs, bearer tokens and signing secrets are stored unencrypted",
    );
  }
  return createSecretBox(config.secretsKey, config.secrets.previousKey);
}
