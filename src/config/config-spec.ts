import { apiSpec } from "./api-spec.ts";
import { deliverySpec, feishuSpec } from "./delivery-spec.ts";
import { databaseSpec, kafkaSpec } from "./infrastructure-spec.ts";
import { metricsSpec } from "./metrics-spec.ts";
import { outboxSpec } from "./outbox-spec.ts";
import { retentionSpec } from "./retention-spec.ts";
import { secretsSpec } from "./secrets-spec.ts";
import { optional, setting } from "./setting.ts";
import { tracingSpec } from "./tracing-spec.ts";
import { integer, oneOf, secretsKey } from "./value-parsers.ts";

/**
 * Every configuration key, once: its environment name, default, parser and meaning. The config's type is
 * derived from this table (`Config` in load-config.ts), the README's table is generated from it
 * (`scripts/config-table.ts`), and a unit test checks that the two agree. Adding a key is adding a row.
 * Rules that tie several keys together are in load-config.ts (`crossChecks`).
 */
export const configSpec = {
  logLevel: setting(
    "LOG_LEVEL",
    "info",
    oneOf(["debug", "info", "warn", "error", "silent"]),
    "debug, info, warn, error or silent",
  ),
  database: databaseSpec,
  kafka: kafkaSpec,
  outbox: outboxSpec,
  feishu: feishuSpec,
  delivery: deliverySpec,
  api: apiSpec,
  metrics: metricsSpec,
  retention: retentionSpec,
  secretsKey: optional(
    "SECRETS_KEY",
    secretsKey,
    "base64 of 32 random bytes: encrypts webhook URLs, tokens and signing secrets at rest (AES-256-GCM)",
  ),
  secrets: secretsSpec,
  tracing: tracingSpec,
  shutdownGraceMs: setting(
    "SHUTDOWN_GRACE_MS",
    "15000",
    integer(0),
    "the shutdown budget: calls and loops drain within it, then what is left is cut off (closing the bus and the database takes up to 2 s more each)",
  ),
};
