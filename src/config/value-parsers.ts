import type { DatabaseTarget } from "../db/database.ts";
import { zonedTime } from "../db/zoned-time.ts";
import { isValidTableName, knownServices, type RouteOverrides } from "../outbox/routes.ts";
import { ConfigError, type Env, envValue, type Parse } from "./setting.ts";

/** How keys' text becomes values. Each error names the key and says what is expected. */

export const text: Parse<string> = (raw) => raw;

export function integer(min: number, max = Number.MAX_SAFE_INTEGER): Parse<number> {
  return (raw, key) => {
    if (!/^-?\d+$/.test(raw))
      throw new ConfigError(`${key} must be a whole number, got ${JSON.stringify(raw)}`);
    const value = Number(raw);
    if (value < min || value > max) {
      throw new ConfigError(`${key} must be between ${min} and ${max}, got ${value}`);
    }
    return value;
  };
}

export function oneOf<const T extends string>(values: readonly T[]): Parse<T> {
  return (raw, key) => {
    if (!(values as readonly string[]).includes(raw)) {
      throw new ConfigError(`${key} must be one of ${values.join(", ")}; got ${JSON.stringify(raw)}`);
    }
    return raw as T;
  };
}

export const boolean: Parse<boolean> = (raw, key) => {
  if (raw !== "true" && raw !== "false") {
    throw new ConfigError(`${key} must be true or false, got ${JSON.stringify(raw)}`);
  }
  return raw === "true";
};

export const httpUrl: Parse<string> = (raw, key) => {
  if (!/^https?:\/\/[^/\s]+/.test(raw)) {
    throw new ConfigError(`${key} must be an http(s) URL, got ${JSON.stringify(raw)}`);
  }
  return raw;
};

/** `host:port`, where an IPv6 host may be bracketed and port 0 picks a free port. */
export const address: Parse<{ readonly host: string; readonly port: number }> = (raw, key) => {
  const match = /^(.*):(\d{1,5})$/.exec(raw);
  const host = match?.[1];
  const port = Number(match?.[2]);
  if (!host || port > 65_535) {
    throw new ConfigError(`${key} must be host:port (port 0 picks a free one), got ${JSON.stringify(raw)}`);
  }
  return { host: host.replace(/^\[(.*)\]$/, "$1"), port };
};

/** Comma-separated `host:port` entries; empty means none. */
export const brokerList: Parse<readonly string[]> = (raw, key) => {
  const brokers = splitList(raw);
  for (const broker of brokers) {
    if (!/^[^\s:]+:\d{1,5}$/.test(broker)) {
      throw new ConfigError(`${key} entries must be host:port, got ${JSON.stringify(broker)}`);
    }
  }
  return brokers;
};

/** Comma-separated hosts, lower-cased; `host` means port 443, `host:port` any other port. */
export const hostList: Parse<readonly string[]> = (raw, key) => {
  const hosts = splitList(raw).map((host) => host.toLowerCase());
  for (const host of hosts) {
    if (!/^[a-z0-9.-]+(:\d{1,5})?$/.test(host) || host.endsWith(":443")) {
      throw new ConfigError(
        `${key} entries must be host or host:port (not :443), got ${JSON.stringify(host)}`,
      );
    }
  }
  return hosts;
};

export const databaseTarget: Parse<DatabaseTarget> = (url, key) => {
  if (url.startsWith("sqlite:")) {
    const path = url.slice("sqlite:".length);
    if (!path) throw new ConfigError(`${key} sqlite: needs a path, e.g. sqlite:data/notification.sqlite`);
    return { kind: "sqlite", path };
  }
  if (url.startsWith("mysql://")) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ConfigError(`${key} is not a valid URL: ${maskPassword(url)}`);
    }
    if (parsed.pathname.length <= 1) throw new ConfigError(`${key} must name a database: mysql://…/<db>`);
    return { kind: "mysql", url };
  }
  throw new ConfigError(
    `${key} must start with mysql:// or sqlite:, got ${JSON.stringify(maskPassword(url))}`,
  );
};

/** `local` or an IANA zone name this runtime knows (`Asia/Shanghai`, `UTC`). */
export const timeZone: Parse<string> = (raw, key) => {
  try {
    zonedTime(raw);
  } catch {
    throw new ConfigError(
      `${key} must be local or an IANA time zone such as Asia/Shanghai, got ${JSON.stringify(raw)}`,
    );
  }
  return raw;
};

export const secretsKey: Parse<Buffer> = (raw, key) => {
  const bytes = Buffer.from(raw, "base64");
  if (bytes.length !== 32 || bytes.toString("base64") !== raw) {
    throw new ConfigError(`${key} must be the base64 of exactly 32 bytes (e.g. \`openssl rand -base64 32\`)`);
  }
  return bytes;
};

/** `OUTBOX_SERVICES_<SERVICE>_{TABLE,TOPIC,GROUP_ID}` for each known service (`-` written as `_`). */
export function readRouteOverrides(env: Env): RouteOverrides {
  const overrides: Record<string, { table?: string; topic?: string; groupId?: string }> = {};
  for (const service of knownServices) {
    const prefix = `OUTBOX_SERVICES_${service.toUpperCase().replaceAll("-", "_")}_`;
    const table = envValue(env, `${prefix}TABLE`);
    const topic = envValue(env, `${prefix}TOPIC`);
    const groupId = envValue(env, `${prefix}GROUP_ID`);
    if (table && !isValidTableName(table)) {
      throw new ConfigError(`${prefix}TABLE must be a plain SQL identifier, got ${JSON.stringify(table)}`);
    }
    if (topic && !/^[A-Za-z0-9._-]{1,249}$/.test(topic)) {
      throw new ConfigError(`${prefix}TOPIC is not a valid Kafka topic name: ${JSON.stringify(topic)}`);
    }
    if (table || topic || groupId) {
      overrides[service] = {
        ...(table ? { table } : {}),
        ...(topic ? { topic } : {}),
        ...(groupId ? { groupId } : {}),
      };
    }
  }
  return overrides;
}

function splitList(raw: string): string[] {
  return raw
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

function maskPassword(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, "$1****@");
}
