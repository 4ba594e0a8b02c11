import { secretKeyId } from "../lib/secret-box.ts";
import { configSpec } from "./config-spec.ts";
import { GoConfigError, type GoDeploymentFiles, readGoDeployment } from "./go-deployment.ts";
import { METRICS_ADDR } from "./metrics-spec.ts";
import { retentionCrossCheck } from "./retention-spec.ts";
import { ConfigError, type Env, readSpec, settingsOf, type ValuesOf } from "./setting.ts";

export { ConfigError } from "./setting.ts";

/**
 * The whole configuration, parsed once at the process edge (src/main.ts) and frozen. Its shape is the spec's
 * (config-spec.ts): `config.outbox.relayBatchSize` is the value of `OUTBOX_RELAY_BATCH_SIZE`; `goDeployment`
 * says what a SmartFlow Go deployment's configuration supplied. This module is the only reader of
 * `process.env`.
 */
export type Config = ValuesOf<typeof configSpec> & { readonly goDeployment: GoDeploymentSource };

/** The Go deployment's configuration this config was merged with (go-deployment.ts). */
export interface GoDeploymentSource {
  /** The Go config file read (`config.yaml`, `backend/config.yaml` or `SMARTFLOW_CONFIG_FILE`), if any. */
  readonly file: string | undefined;
  /** Our keys whose value came from it (not set by our own variables), and the Go key each came from. */
  readonly keys: Readonly<Record<string, string>>;
}

export interface LoadOptions {
  /** Where the Go deployment's `config.yaml` is looked for (default: the working directory). */
  readonly cwd?: string;
  readonly files?: GoDeploymentFiles;
}

/** Every key, its default and its meaning, in the README's order. */
export const configKeys = settingsOf(configSpec).map(({ key, shownDefault, doc }) => ({
  key,
  default: shownDefault,
  doc,
}));

/** Rules over several keys; each returns the error to report, or undefined. */
const crossChecks: readonly ((config: ValuesOf<typeof configSpec>) => string | undefined)[] = [
  ({ retention }) => retentionCrossCheck(retention),
  ({ outbox }) =>
    outbox.retryMaxMs < outbox.retryBaseMs
      ? "OUTBOX_RETRY_MAX_MS must not be below OUTBOX_RETRY_BASE_MS"
      : undefined,
  ({ outbox }) =>
    outbox.staleClaimMs <= outbox.publishTimeoutMs
      ? "OUTBOX_STALE_PUBLISHED_MS must be longer than OUTBOX_PUBLISH_TIMEOUT_MS"
      : undefined,
  // Otherwise every stale claim would be old enough to be dead, and no claim would ever be re-queued.
  ({ outbox }) =>
    outbox.claimedMaxAgeMs <= outbox.staleClaimMs
      ? "OUTBOX_CLAIMED_MAX_AGE_MS must be longer than OUTBOX_STALE_PUBLISHED_MS"
      : undefined,
  ({ delivery }) =>
    delivery.maxAgeMs <= Math.max(delivery.sendingLeaseMs, delivery.strandedAfterMs)
      ? "DELIVERY_MAX_AGE_MS must be longer than DELIVERY_SENDING_LEASE_MS and DELIVERY_STRANDED_AFTER_MS"
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
  ({ secretsKey, secrets }) =>
    secrets.previousKey && !secretsKey ? "SECRETS_KEY_PREVIOUS needs SECRETS_KEY (the new key)" : undefined,
  ({ secretsKey, secrets }) =>
    secrets.previousKey && secretsKey && secretKeyId(secretsKey) === secretKeyId(secrets.previousKey)
      ? "SECRETS_KEY_PREVIOUS must differ from SECRETS_KEY (and have another key id)"
      : undefined,
  ({ api }) =>
    api.tlsClientCaFile && !api.tlsCertFile
      ? "TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE"
      : undefined,
];

/**
 * Parses, defaults and validates every key; throws a `ConfigError` naming the first key at fault. A SmartFlow
 * Go deployment's configuration (`config.yaml` and `SMARTFLOW_*` variables, go-deployment.ts) is read too,
 * mapped onto our keys and merged under our own variables: ours win. An error in a value that came from it
 * says which Go key it came from.
 */
export function loadConfig(env: Env = process.env, options: LoadOptions = {}): Config {
  const go = readGo(env, options);
  const keys = Object.fromEntries(
    Object.entries(go.from).filter(([key]) => env[key] === undefined || env[key]?.trim() === ""),
  );
  const merged: Env = { ...go.env, ...withoutBlanks(env) };
  try {
    const values = readSpec(configSpec, merged);
    for (const check of crossChecks) {
      const error = check(values);
      if (error) throw new ConfigError(error);
    }
    return deepFreeze({ ...values, goDeployment: { file: go.file, keys } });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(error.message + goOrigins(error.message, keys, go.file));
  }
}

function readGo(env: Env, options: LoadOptions) {
  try {
    return readGoDeployment(env, options);
  } catch (error) {
    if (error instanceof GoConfigError) throw new ConfigError(`Go deployment config: ${error.message}`);
    throw error;
  }
}

/** A blank variable counts as unset (setting.ts `envValue`), so it must not hide the Go deployment's value. */
/** Blank variables count as unset (the Go deployment's value or the default applies), except METRICS_ADDR's. */
function withoutBlanks(env: Env): Env {
  return Object.fromEntries(
    Object.entries(env).filter(
      ([key, value]) => value?.trim() || (key === METRICS_ADDR && value !== undefined),
    ),
  );
}

/** " (GRPC_ADDR came from notification.rpc.listenOn in /app/config.yaml)" for each Go key the message names. */
function goOrigins(message: string, keys: Readonly<Record<string, string>>, file: string | undefined) {
  const named = Object.entries(keys).filter(([key]) => new RegExp(`\\b${key}\\b`).test(message));
  return named
    .map(([key, goKey]) => {
      const where = file && !goKey.startsWith("SMARTFLOW_") ? ` in ${file}` : "";
      return ` (${key} came from ${goKey}${where})`;
    })
    .join("");
}

function deepFreeze<T>(value: T): T {
  // Typed arrays (the secrets key) cannot be frozen; the config never hands them out for writing.
  if (value && typeof value === "object" && !ArrayBuffer.isView(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
