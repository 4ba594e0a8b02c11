import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse as parseYaml } from "yaml";

type Env = Readonly<Record<string, string | undefined>>;

/** A Go deployment's setting that cannot be read; the message names the file or variable and the key. */
export class GoConfigError extends Error {
  override readonly name = "GoConfigError";
}

/** What a SmartFlow Go deployment says, turned into this service's own keys. */
export interface GoDeployment {
  /** The config file read, or undefined when there is none (SMARTFLOW_* variables may still apply). */
  readonly file: string | undefined;
  /** This service's keys (e.g. `DATABASE_URL`, `GRPC_ADDR`) with the values the Go deployment implies. */
  readonly env: Readonly<Record<string, string>>;
  /** For each key of `env`, where its value came from: Go keys (`notification.rpc.listenOn`) or variables. */
  readonly from: Readonly<Record<string, string>>;
}

export interface GoDeploymentFiles {
  exists(path: string): boolean;
  read(path: string): string;
}

const nodeFiles: GoDeploymentFiles = {
  exists: (path) => existsSync(path),
  read: (path) => readFileSync(path, "utf8"),
};

/**
 * Reads the configuration a SmartFlow Go service reads (`backend/shared/infra/bootstrap/config.go`, viper):
 * the YAML file named by `SMARTFLOW_CONFIG_FILE`, else `config.yaml` in the working directory or in
 * `backend/`; every key may be overridden by `SMARTFLOW_<KEY>` with dots as underscores, upper case (e.g.
 * `SMARTFLOW_NOTIFICATION_RPC_LISTENON`). Only the keys the notification service uses are read, and each is
 * mapped onto this service's key; the caller lets this service's own variables win.
 *
 * | Go key | this service |
 * |---|---|
 * | `database.host/port/user/password/dbname` | `DATABASE_URL` (`mysql://…`) |
 * | `kafka.enabled`, `kafka.brokers` (or `kafka.broker`) | `KAFKA_BROKERS` (empty when disabled) |
 * | `kafka.maxRetry` | `OUTBOX_MAX_RETRY` |
 * | `outbox.services.notification.{topic,groupID,table}` | `OUTBOX_SERVICES_NOTIFICATION_{TOPIC,GROUP_ID,TABLE}` |
 * | `notification.rpc.listenOn` | `GRPC_ADDR` |
 * | `notification.rpc.timeout` | `RPC_TIMEOUT_MS` (≤ 0 means Go's default, 6 s) |
 * | `notification.frontendBaseURL` | `FRONTEND_BASE_URL` |
 * | `notification.retryScanEvery` | `DELIVERY_RETRY_SCAN_INTERVAL_MS` (≤ 0 means 1 min) |
 * | `notification.retryBatchSize` | `DELIVERY_RETRY_BATCH_SIZE` (≤ 0 means 50) |
 */
export function readGoDeployment(
  env: Env,
  options: { readonly cwd?: string; readonly files?: GoDeploymentFiles } = {},
): GoDeployment {
  const files = options.files ?? nodeFiles;
  const cwd = options.cwd ?? process.cwd();
  const file = findConfigFile(env, cwd, files);
  const tree = file ? parseFile(file, files) : {};
  const used: string[] = [];
  const get: Getter = (key) => {
    const found = lookup(env, tree, key);
    if (found) used.push(found.from);
    return found;
  };
  const out: Record<string, string> = {};
  const from: Record<string, string> = {};
  const set = (ourKey: string, read: () => string | undefined) => {
    used.length = 0;
    const value = read();
    if (value === undefined) return;
    out[ourKey] = value;
    from[ourKey] = [...new Set(used)].join(", ");
  };

  set("DATABASE_URL", () => databaseUrl(get));
  set("KAFKA_BROKERS", () => kafkaBrokers(get));
  set("OUTBOX_MAX_RETRY", () => positiveInt(get, "kafka.maxRetry", 20));
  for (const [goKey, ourKey] of [
    ["topic", "TOPIC"],
    ["groupID", "GROUP_ID"],
    ["table", "TABLE"],
  ] as const) {
    set(`OUTBOX_SERVICES_NOTIFICATION_${ourKey}`, () => text(get(`outbox.services.notification.${goKey}`)));
  }
  set("GRPC_ADDR", () => text(get("notification.rpc.listenOn")));
  set("RPC_TIMEOUT_MS", () => durationMs(get, "notification.rpc.timeout", 6_000));
  set("FRONTEND_BASE_URL", () => text(get("notification.frontendBaseURL")));
  set("DELIVERY_RETRY_SCAN_INTERVAL_MS", () => durationMs(get, "notification.retryScanEvery", 60_000));
  set("DELIVERY_RETRY_BATCH_SIZE", () => positiveInt(get, "notification.retryBatchSize", 50));
  return { file, env: out, from };
}

type Getter = (key: string) => { readonly value: unknown; readonly from: string } | undefined;

function findConfigFile(env: Env, cwd: string, files: GoDeploymentFiles): string | undefined {
  const named = env.SMARTFLOW_CONFIG_FILE?.trim();
  if (named) {
    const path = resolve(cwd, named);
    if (!files.exists(path)) {
      throw new GoConfigError(`SMARTFLOW_CONFIG_FILE names ${JSON.stringify(named)}, which does not exist`);
    }
    return path;
  }
  return [resolve(cwd, "config.yaml"), resolve(cwd, "backend", "config.yaml")].find((path) =>
    files.exists(path),
  );
}

function parseFile(path: string, files: GoDeploymentFiles): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = parseYaml(files.read(path));
  } catch (error) {
    throw new GoConfigError(`${path} is not valid YAML: ${(error as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new GoConfigError(`${path} must hold a YAML mapping at the top level`);
  }
  return parsed as Record<string, unknown>;
}

/** viper's lookup: the `SMARTFLOW_…` variable first, then the file; keys are case-insensitive. */
function lookup(env: Env, tree: Record<string, unknown>, key: string) {
  const variable = `SMARTFLOW_${key.toUpperCase().replaceAll(".", "_")}`;
  const fromEnv = env[variable];
  if (fromEnv !== undefined && fromEnv.trim() !== "") return { value: fromEnv, from: variable };
  let node: unknown = tree;
  for (const part of key.split(".")) {
    if (typeof node !== "object" || node === null || Array.isArray(node)) return undefined;
    const match = Object.keys(node).find((k) => k.toLowerCase() === part.toLowerCase());
    if (match === undefined) return undefined;
    node = (node as Record<string, unknown>)[match];
  }
  return node === undefined || node === null ? undefined : { value: node, from: key };
}

function text(found: ReturnType<Getter>): string | undefined {
  if (found === undefined) return undefined;
  const value = scalar(found);
  return value === "" ? undefined : value;
}

function scalar(found: NonNullable<ReturnType<Getter>>): string {
  const { value, from } = found;
  if (typeof value === "string") return value.trim();
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  throw new GoConfigError(`${from} must be a single value, got ${JSON.stringify(value)}`);
}

function databaseUrl(get: Getter): string | undefined {
  const host = text(get("database.host"));
  const name = text(get("database.dbname"));
  if (host === undefined && name === undefined) return undefined;
  if (host === undefined || name === undefined) {
    throw new GoConfigError("database.host and database.dbname go together");
  }
  const port = text(get("database.port")) ?? "3306";
  if (!/^\d{1,5}$/.test(port)) throw new GoConfigError(`database.port must be a port number, got ${port}`);
  const user = encodeURIComponent(text(get("database.user")) ?? "root");
  const password = text(get("database.password"));
  const credentials = password === undefined ? user : `${user}:${encodeURIComponent(password)}`;
  const bracketed = host.includes(":") ? `[${host}]` : host;
  return `mysql://${credentials}@${bracketed}:${port}/${encodeURIComponent(name)}`;
}

/** `kafka.enabled: false` (Go's default) means no broker: this service then runs its in-process bus. */
function kafkaBrokers(get: Getter): string | undefined {
  const enabledAt = get("kafka.enabled");
  const brokersAt = get("kafka.brokers") ?? get("kafka.broker");
  if (enabledAt === undefined && brokersAt === undefined) return undefined;
  const enabled = enabledAt !== undefined && parseBool(enabledAt);
  if (!enabled) return "";
  const brokers = brokersAt === undefined ? [] : list(brokersAt);
  if (brokers.length === 0) throw new GoConfigError("kafka.enabled is true but kafka.brokers is empty");
  return brokers.join(",");
}

function parseBool(found: NonNullable<ReturnType<Getter>>): boolean {
  const value = scalar(found).toLowerCase();
  // Go's strconv.ParseBool, which viper uses.
  if (["1", "t", "true"].includes(value)) return true;
  if (["0", "f", "false", ""].includes(value)) return false;
  throw new GoConfigError(`${found.from} must be true or false, got ${JSON.stringify(value)}`);
}

/** A YAML list, or a string split on commas and white space (viper splits a variable on white space). */
function list(found: NonNullable<ReturnType<Getter>>): string[] {
  const items = Array.isArray(found.value) ? found.value.map(String) : scalar(found).split(/[\s,]+/);
  return items.map((item) => item.trim()).filter(Boolean);
}

/** Go's `viper.GetInt` with the service's fallback for values ≤ 0. */
function positiveInt(get: Getter, key: string, fallback: number): string | undefined {
  const found = get(key);
  if (found === undefined) return undefined;
  const value = scalar(found);
  if (!/^-?\d+$/.test(value)) throw new GoConfigError(`${found.from} must be a whole number, got ${value}`);
  const n = Number(value);
  return String(n > 0 ? n : fallback);
}

/** Go's `viper.GetDuration` in milliseconds, with the service's fallback for values ≤ 0. */
function durationMs(get: Getter, key: string, fallback: number): string | undefined {
  const found = get(key);
  if (found === undefined) return undefined;
  const ms = parseGoDuration(scalar(found));
  if (ms === undefined) {
    throw new GoConfigError(`${found.from} must be a Go duration such as 6s or 1m, got ${scalar(found)}`);
  }
  return String(ms > 0 ? Math.max(1, Math.round(ms)) : fallback);
}

const unitMs: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Go's `time.ParseDuration` (`1h30m`, `1.5s`, `-2m`, `0`), in milliseconds. As viper's cast does, a bare
 * number is nanoseconds. Returns undefined when the text is not a duration.
 */
export function parseGoDuration(text: string): number | undefined {
  const value = text.trim();
  if (/^[+-]?\d+$/.test(value)) return Number(value) * 1e-6;
  const match = /^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/.exec(value);
  if (!match) return undefined;
  let total = 0;
  for (const part of value
    .slice(match[1]?.length ?? 0)
    .matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(part[1]) * (unitMs[part[2] as string] ?? 0);
  }
  return match[1] === "-" ? -total : total;
}
