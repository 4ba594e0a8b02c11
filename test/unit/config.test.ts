import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, loadConfig } from "../../src/config.ts";

test("the defaults run the embedded service and SmartFlow's routes", () => {
  const config = loadConfig({});
  assert.deepEqual(config.database, { kind: "sqlite", path: "data/smartflow-notification.sqlite" });
  assert.deepEqual(config.kafka.brokers, []);
  assert.equal(config.outbox.maxRetry, 20);
  assert.equal(config.outbox.retryMaxMs, 100_000);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.outbox));
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
  ];
  for (const [env, message] of cases) {
    assert.throws(
      () => loadConfig(env),
      (error: unknown) => error instanceof ConfigError && message.test(error.message),
    );
  }
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
