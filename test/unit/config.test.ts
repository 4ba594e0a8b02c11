import assert from "node:assert/strict";
import { test } from "node:test";
import { API_SERVER_DEFAULTS } from "../../src/api/api-server-options.ts";
import { configSpec } from "../../src/config/config-spec.ts";
import type { GoDeploymentFiles } from "../../src/config/go-deployment.ts";
import { ConfigError, configKeys, loadConfig } from "../../src/config/load-config.ts";
import { settingsOf } from "../../src/config/setting.ts";

test("the defaults run the embedded service and SmartFlow's routes", () => {
  const config = loadConfig({});
  assert.deepEqual(config.database.target, { kind: "sqlite", path: "data/smartflow-notification.sqlite" });
  assert.deepEqual(config.kafka.brokers, []);
  assert.equal(config.outbox.maxRetry, 20);
  assert.equal(config.outbox.retryMaxMs, 100_000);
  assert.deepEqual(config.api.address, { host: "0.0.0.0", port: 9082 });
  assert.deepEqual(config.feishu.allowedHosts, [
    "feishu.cn",
    "www.feishu.cn",
    "open.feishu.cn",
    "open.larksuite.com",
  ]);
  assert.equal(config.secretsKey, undefined);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.outbox));
});

test("each key's value lands where the spec puts it, and a blank value means the default", () => {
  const config = loadConfig({
    OUTBOX_RELAY_BATCH_SIZE: "250",
    API_TOKEN_FOR_LEGACY: "true",
    GRPC_ADDR: "[::1]:0",
    KAFKA_BROKERS: " a:1, b:2 ",
    DELIVERY_CONCURRENCY: "  ",
  });
  assert.equal(config.outbox.relayBatchSize, 250);
  assert.equal(config.api.tokenForLegacy, true);
  assert.deepEqual(config.api.address, { host: "::1", port: 0 });
  assert.deepEqual(config.kafka.brokers, ["a:1", "b:2"]);
  assert.equal(config.delivery.concurrency, 128);
});

test("every key is documented once, with a default and a meaning", () => {
  const keys = configKeys.map((k) => k.key);
  assert.equal(new Set(keys).size, keys.length, "no key twice");
  for (const { key, default: shown, doc } of configKeys) {
    assert.ok(shown && doc, key);
  }
  assert.equal(settingsOf(configSpec).length, configKeys.length);
  assert.ok(!keys.includes("OUTBOX_CONSUMER_CONCURRENCY"), "no documented key without an effect");
});

test("a bad value stops startup with a message that names the key", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ OUTBOX_RELAY_BATCH_SIZE: "ten" }, /OUTBOX_RELAY_BATCH_SIZE must be a whole number/],
    [{ OUTBOX_RELAY_BATCH_SIZE: "0" }, /OUTBOX_RELAY_BATCH_SIZE must be between 1/],
    [{ DATABASE_URL: "postgres://x/y" }, /DATABASE_URL must start with mysql:\/\/ or sqlite:/],
    [{ DATABASE_URL: "mysql://root:secret@h:3306" }, /DATABASE_URL must name a database/],
    [{ KAFKA_BROKERS: "localhost" }, /KAFKA_BROKERS entries must be host:port/],
    [{ LOG_LEVEL: "loud" }, /LOG_LEVEL must be one of/],
    [
      { OUTBOX_SERVICES_NOTIFICATION_TABLE: "x; drop table y" },
      /OUTBOX_SERVICES_NOTIFICATION_TABLE must be a plain/,
    ],
    [{ OUTBOX_RETRY_BASE_MS: "5000", OUTBOX_RETRY_MAX_MS: "10" }, /OUTBOX_RETRY_MAX_MS must not be below/],
    [{ OUTBOX_STALE_PUBLISHED_MS: "5000" }, /OUTBOX_STALE_PUBLISHED_MS must be longer/],
    [{ DELIVERY_SENDING_LEASE_MS: "9000" }, /DELIVERY_SENDING_LEASE_MS must be longer than 2 × FEISHU/],
    [{ FEISHU_TIMEOUT_MS: "6000" }, /FEISHU_TIMEOUT_MS must be shorter than RPC_TIMEOUT_MS/],
    [{ TLS_CERT_FILE: "c.pem" }, /TLS_CERT_FILE and TLS_KEY_FILE go together/],
    [{ TLS_CLIENT_CA_FILE: "ca.pem" }, /TLS_CLIENT_CA_FILE needs TLS_CERT_FILE/],
    [{ API_TOKEN_FOR_LEGACY: "yes" }, /API_TOKEN_FOR_LEGACY must be true or false/],
    [
      { FEISHU_ALLOWED_HOSTS: "open.feishu.cn:443" },
      /FEISHU_ALLOWED_HOSTS entries must be host or host:port/,
    ],
    [{ FRONTEND_BASE_URL: "smartflow" }, /FRONTEND_BASE_URL must be an http\(s\) URL/],
    [{ GRPC_ADDR: "9082" }, /GRPC_ADDR must be host:port/],
    [{ SECRETS_KEY: "c2hvcnQ=" }, /SECRETS_KEY must be the base64 of exactly 32 bytes/],
    [{ DATABASE_TIME_ZONE: "Asia/Beijing" }, /DATABASE_TIME_ZONE must be local or an IANA time zone/],
    [{ OUTBOX_CLAIMED_MAX_AGE_MS: "600000" }, /OUTBOX_CLAIMED_MAX_AGE_MS must be longer than OUTBOX_STALE/],
    [{ DELIVERY_MAX_AGE_MS: "120000" }, /DELIVERY_MAX_AGE_MS must be longer than DELIVERY_SENDING_LEASE_MS/],
    [
      { API_HTTP1_HEADERS_TIMEOUT_MS: "70000", API_HTTP1_REQUEST_TIMEOUT_MS: "60000" },
      /API_HTTP1_HEADERS_TIMEOUT_MS must not exceed API_HTTP1_REQUEST_TIMEOUT_MS/,
    ],
    [{ API_MAX_CONCURRENT_STREAMS: "0" }, /API_MAX_CONCURRENT_STREAMS must be between 1/],
    [{ API_HANDSHAKE_TIMEOUT_MS: "5s" }, /API_HANDSHAKE_TIMEOUT_MS must be a whole number/],
  ];
  for (const [env, message] of cases) {
    assert.throws(
      () => loadConfig(env),
      (error: unknown) => error instanceof ConfigError && message.test(error.message),
      JSON.stringify(env),
    );
  }
});

test("the API's connection limits default to the API server's own defaults, key by key", () => {
  assert.deepEqual({ ...loadConfig({}).api.connections }, { ...API_SERVER_DEFAULTS });
  const set = loadConfig({
    API_HANDSHAKE_TIMEOUT_MS: "5000",
    API_HTTP1_HEADERS_TIMEOUT_MS: "1000",
    API_HTTP1_REQUEST_TIMEOUT_MS: "2000",
    API_MAX_CONCURRENT_STREAMS: "7",
    API_SESSION_MEMORY_MB: "64",
    API_MAX_CONNECTION_AGE_MS: "600000",
    API_MAX_CONNECTION_AGE_GRACE_MS: "0",
  }).api.connections;
  assert.deepEqual(
    { ...set },
    {
      handshakeTimeoutMs: 5_000,
      http1HeadersTimeoutMs: 1_000,
      http1RequestTimeoutMs: 2_000,
      maxConcurrentStreams: 7,
      sessionMemoryMb: 64,
      maxConnectionAgeMs: 600_000,
      maxConnectionAgeGraceMs: 0,
    },
  );
});

test("passwords in a bad DATABASE_URL are not echoed", () => {
  assert.throws(
    () => loadConfig({ DATABASE_URL: "pg://root:hunter2@db/x" }),
    (error: unknown) => error instanceof Error && !error.message.includes("hunter2"),
  );
});

test("route overrides apply to the named service only", () => {
  const config = loadConfig({
    OUTBOX_SERVICES_NOTIFICATION_TABLE: "notif_outbox",
    OUTBOX_SERVICES_ACTIVE_SCHEDULER_TOPIC: "as.topic",
  });
  assert.deepEqual(config.outbox.routeOverrides, {
    notification: { table: "notif_outbox" },
    "active-scheduler": { topic: "as.topic" },
  });
});

test("the database time zone and the age limits", () => {
  const defaults = loadConfig({});
  assert.equal(defaults.database.timeZone, "local");
  assert.equal(defaults.outbox.claimedMaxAgeMs, 86_400_000);
  assert.equal(defaults.delivery.maxAgeMs, 86_400_000);
  assert.equal(loadConfig({ DATABASE_TIME_ZONE: "Asia/Shanghai" }).database.timeZone, "Asia/Shanghai");
});

/** A Go deployment's files, as SmartFlow's docker image holds them (/app/backend/config.yaml). */
function goFiles(yaml: string): { cwd: string; files: GoDeploymentFiles } {
  return {
    cwd: "/app",
    files: { exists: (path) => path === "/app/backend/config.yaml", read: () => yaml },
  };
}

const goYaml = `
database: {host: mysql, port: 3306, user: smartflow, password: secret, dbname: smartflow}
kafka: {enabled: true, brokers: ["kafka:9092"], maxRetry: 30}
outbox: {services: {notification: {topic: sf.notification.outbox, groupID: sf-notification}}}
notification:
  rpc: {listenOn: "0.0.0.0:19082", timeout: 6s}
  frontendBaseURL: https://smartflow.example.org
  retryScanEvery: 30s
  retryBatchSize: 50
`;

test("a Go deployment's config.yaml is merged under our own variables, which win", () => {
  const config = loadConfig({ KAFKA_BROKERS: "ours:9092", GRPC_ADDR: " " }, goFiles(goYaml));
  assert.deepEqual(config.database.target, {
    kind: "mysql",
    url: "mysql://smartflow:secret@mysql:3306/smartflow",
  });
  assert.deepEqual(config.kafka.brokers, ["ours:9092"], "our KAFKA_BROKERS wins");
  assert.deepEqual(config.api.address, { host: "0.0.0.0", port: 19082 }, "a blank variable is unset");
  assert.equal(config.outbox.maxRetry, 30);
  assert.deepEqual(config.outbox.routeOverrides, {
    notification: { topic: "sf.notification.outbox", groupId: "sf-notification" },
  });
  assert.equal(config.feishu.frontendBaseUrl, "https://smartflow.example.org");
  assert.equal(config.delivery.retryScanIntervalMs, 30_000);
  assert.equal(config.delivery.retryBatchSize, 50);
  assert.equal(config.goDeployment.file, "/app/backend/config.yaml");
  assert.equal(config.goDeployment.keys.GRPC_ADDR, "notification.rpc.listenOn");
  assert.equal(config.goDeployment.keys.KAFKA_BROKERS, undefined, "not from Go: ours was set");
  assert.deepEqual(loadConfig({}).goDeployment, { file: undefined, keys: {} });
});

test("a bad Go value stops startup naming the Go key it came from", () => {
  const cases: [Record<string, string>, string, RegExp][] = [
    [{}, "notification: {rpc: {timeout: soon}}", /Go deployment config: notification\.rpc\.timeout must be/],
    [{}, "kafka: {enabled: true}", /kafka\.enabled is true but kafka\.brokers is empty/],
    [
      {},
      "notification: {rpc: {listenOn: ':x'}}",
      /GRPC_ADDR must be host:port.*\(GRPC_ADDR came from notification\.rpc\.listenOn in \/app\/backend\/config\.yaml\)/,
    ],
    [
      { SMARTFLOW_NOTIFICATION_RPC_TIMEOUT: "2s" },
      "",
      /FEISHU_TIMEOUT_MS must be shorter than RPC_TIMEOUT_MS \(RPC_TIMEOUT_MS came from SMARTFLOW_NOTIFICATION_RPC_TIMEOUT\)$/,
    ],
  ];
  for (const [env, yaml, message] of cases) {
    assert.throws(
      () => loadConfig(env, goFiles(yaml)),
      (error: unknown) => error instanceof ConfigError && message.test(error.message),
      yaml,
    );
  }
});

test("METRICS_ADDR: unset listens on 0.0.0.0:9464, empty turns the listener off (it is not dropped as blank)", () => {
  const base = { DATABASE_URL: "sqlite::memory:" };
  assert.deepEqual(loadConfig(base).metrics.address, { host: "0.0.0.0", port: 9464 });
  assert.equal(loadConfig({ ...base, METRICS_ADDR: "" }).metrics.address, undefined);
  assert.equal(loadConfig({ ...base, METRICS_ADDR: "  " }).metrics.address, undefined);
  assert.deepEqual(loadConfig({ ...base, METRICS_ADDR: "127.0.0.1:0" }).metrics.address, {
    host: "127.0.0.1",
    port: 0,
  });
});
