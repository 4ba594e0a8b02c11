import { configSpec } from "./config-spec.ts";
import { ConfigError, type Env, readSpec, settingsOf, type ValuesOf } from "./setting.ts";

export { ConfigError } from "./setting.ts";

/**
 * The whole configuration, parsed once at the process edge (src/main.ts) and frozen. Its shape is the spec's
 * (config-spec.ts): `config.outbox.relayBatchSize` is the value of `OUTBOX_RELAY_BATCH_SIZE`. This module is
 * the only reader of `process.env`.
 */
export type Config = ValuesOf<typeof configSpec>;

/** Every key, its default and its meaning, in the README's order. */
export const configKeys = settingsOf(configSpec).map(({ key, shownDefault, doc }) => ({
  key,
  default: shownDefault,
  doc,
}));

/** Rules over several keys; each returns the error to report, or undefined. */
const crossChecks: readonly ((config: Config) => string | undefined)[] = [
  ({ outbox }) =>
    outbox.retryMaxMs < outbox.retryBaseMs
      ? "OUTBOX_RETRY_MAX_MS must not be below OUTBOX_RETRY_BASE_MS"
      : undefined,
  ({ outbox }) =>
    outbox.staleClaimMs <= outbox.publishTimeoutMs
      ? "OUTBOX_STALE_PUBLISHED_MS must be longer than OUTBOX_PUBLISH_TIMEOUT_MS"
      : undefined,
  // A group-bot attempt may make two requests (card, then text): the lease must outlast both.
  ({ delivery, feishu }) =>
    delivery.sendingLeaseMs <= 2 * feishu.timeoutMs
      ? "DELIVERY_SENDING_LEASE_MS must be longer than 2 × FEISHU_TIMEOUT_MS"
      : undefined,
  ({ delivery }) =>
    delivery.retryMaxMs < delivery.retryBaseMs
      ? "DELIVERY_RETRY_MAX_MS must not be below DELIVERY_RETRY_BASE_MS"
      : undefined,
  // SmartFlow's boundary: provider 5 s < RPC 6 s, so a slow webhook answers provider_timeout, not DeadlineExceeded.
  ({ feishu, api }) =>
    feishu.timeoutMs >= api.rpcTimeoutMs
      ? "FEISHU_TIMEOUT_MS must be shorter than RPC_TIMEOUT_MS"
      : undefined,
  ({ api }) =>
    Boolean(api.tlsCertFile) !== Boolean(api.tlsKeyFile)
      ? "TLS_CERT_FILE and TLS_KEY_FILE go together"
      : undefined,
  // Node refuses an HTTP/1.1 server whose head timeout exceeds its request timeout.
  ({ api }) =>
    api.connections.http1HeadersTimeoutMs > api.connections.http1RequestTimeoutMs
      ? "API_HTTP1_HEADERS_TIMEOUT_MS must not exceed API_HTTP1_REQUEST_TIMEOUT_MS"
      : undefined,
  ({ api }) =>
    api.tlsClientCaFile && !api.tlsCertFile
      ? "TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE"
      : undefined,
];

/** Parses, defaults and validates every key; throws a `ConfigError` naming the first key at fault. */
export function loadConfig(env: Env = process.env): Config {
  const config = readSpec(configSpec, env);
  for (const check of crossChecks) {
    const error = check(config);
    if (error) throw new ConfigError(error);
  }
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  // Typed arrays (the secrets key) cannot be frozen; the config never hands them out for writing.
  if (value && typeof value === "object" && !ArrayBuffer.isView(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
