import assert from "node:assert/strict";
import { test } from "node:test";
import { type GoDeploymentFiles, parseGoDuration, readGoDeployment } from "../../src/config/go-deployment.ts";

/** A SmartFlow deployment's config.yaml, in the shape of the Go services' own (only what we read, and more). */
const goConfig = `
server:
  port: 8080
database:
  host: mysql
  port: 3306
  user: smartflow_user
  password: "p@ss:w/rd"
  dbname: "smartflow"
kafka:
  enabled: true
  brokers:
    - "kafka-1:9092"
    - "kafka-2:9092"
  topic: "smartflow.agent.outbox"
  retryScanInterval: 1s
  maxRetry: 25
outbox:
  services:
    notification:
      topic: "smartflow.notification.outbox"
      groupID: "smartflow-notification-outbox-consumer"
      table: "notification_outbox_messages"
notification:
  rpc:
    listenOn: "0.0.0.0:9082"
    endpoints:
      - "notification:9082"
    timeout: 6s
  frontendBaseURL: "https://smartflow.example.com"
  retryScanEvery: 1m
  retryBatchSize: 50
time:
  zone: "Asia/Shanghai"
`;

function filesWith(contents: Record<string, string>): GoDeploymentFiles {
  return {
    exists: (path) => path in contents,
    read: (path) => {
      const text = contents[path];
      if (text === undefined) throw new Error(`no such file ${path}`);
      return text;
    },
  };
}

test("a Go deployment's config.yaml maps onto this service's keys", () => {
  const { file, env } = readGoDeployment(
    {},
    { cwd: "/app", files: filesWith({ "/app/config.yaml": goConfig }) },
  );
  assert.equal(file, "/app/config.yaml");
  assert.deepEqual(env, {
    DATABASE_URL: "mysql://smartflow_user:p%40ss%3Aw%2Frd@mysql:3306/smartflow",
    KAFKA_BROKERS: "kafka-1:9092,kafka-2:9092",
    OUTBOX_MAX_RETRY: "25",
    OUTBOX_SERVICES_NOTIFICATION_TOPIC: "smartflow.notification.outbox",
    OUTBOX_SERVICES_NOTIFICATION_GROUP_ID: "smartflow-notification-outbox-consumer",
    OUTBOX_SERVICES_NOTIFICATION_TABLE: "notification_outbox_messages",
    GRPC_ADDR: "0.0.0.0:9082",
    RPC_TIMEOUT_MS: "6000",
    FRONTEND_BASE_URL: "https://smartflow.example.com",
    DELIVERY_RETRY_SCAN_INTERVAL_MS: "60000",
    DELIVERY_RETRY_BATCH_SIZE: "50",
  });
});

test("the file is found where viper looks, and SMARTFLOW_CONFIG_FILE wins", () => {
  const files = filesWith({
    "/app/backend/config.yaml": goConfig,
    "/etc/sf.yaml": "notification:\n  rpc:\n    listenOn: 127.0.0.1:7000\n",
  });
  assert.equal(readGoDeployment({}, { cwd: "/app", files }).file, "/app/backend/config.yaml");
  const named = readGoDeployment({ SMARTFLOW_CONFIG_FILE: "/etc/sf.yaml" }, { cwd: "/app", files });
  assert.equal(named.file, "/etc/sf.yaml");
  assert.deepEqual(named.env, { GRPC_ADDR: "127.0.0.1:7000" });
  assert.throws(
    () => readGoDeployment({ SMARTFLOW_CONFIG_FILE: "missing.yaml" }, { cwd: "/app", files }),
    /SMARTFLOW_CONFIG_FILE names "missing.yaml", which does not exist/,
  );
  assert.deepEqual(readGoDeployment({}, { cwd: "/elsewhere", files }), {
    file: undefined,
    env: {},
    from: {},
  });
});

test("SMARTFLOW_* variables override the file, as viper's AutomaticEnv does", () => {
  const { env } = readGoDeployment(
    {
      SMARTFLOW_NOTIFICATION_RPC_LISTENON: "0.0.0.0:19082",
      SMARTFLOW_KAFKA_BROKERS: "a:9092 b:9092",
      SMARTFLOW_DATABASE_HOST: "db.internal",
      SMARTFLOW_NOTIFICATION_RPC_TIMEOUT: "0s",
      SMARTFLOW_NOTIFICATION_RETRYSCANEVERY: "1m30s",
    },
    { cwd: "/app", files: filesWith({ "/app/config.yaml": goConfig }) },
  );
  assert.equal(env.GRPC_ADDR, "0.0.0.0:19082");
  assert.equal(env.KAFKA_BROKERS, "a:9092,b:9092");
  assert.equal(env.DATABASE_URL, "mysql://smartflow_user:p%40ss%3Aw%2Frd@db.internal:3306/smartflow");
  assert.equal(env.RPC_TIMEOUT_MS, "6000", "a timeout ≤ 0 is Go's default, 6 s");
  assert.equal(env.DELIVERY_RETRY_SCAN_INTERVAL_MS, "90000");
});

test("each key says which Go keys or variables it came from", () => {
  const { from } = readGoDeployment(
    { SMARTFLOW_NOTIFICATION_RPC_LISTENON: "0.0.0.0:19082", SMARTFLOW_DATABASE_HOST: "db.internal" },
    { cwd: "/app", files: filesWith({ "/app/config.yaml": goConfig }) },
  );
  assert.equal(from.GRPC_ADDR, "SMARTFLOW_NOTIFICATION_RPC_LISTENON");
  assert.equal(from.RPC_TIMEOUT_MS, "notification.rpc.timeout");
  assert.equal(
    from.DATABASE_URL,
    "SMARTFLOW_DATABASE_HOST, database.dbname, database.port, database.user, database.password",
  );
  assert.equal(from.KAFKA_BROKERS, "kafka.enabled, kafka.brokers");
  assert.equal(from.OUTBOX_SERVICES_NOTIFICATION_GROUP_ID, "outbox.services.notification.groupID");
});

test("variables alone apply without a file; kafka disabled means the in-process bus", () => {
  const { file, env } = readGoDeployment(
    { SMARTFLOW_KAFKA_ENABLED: "false", SMARTFLOW_NOTIFICATION_FRONTENDBASEURL: "http://localhost:5173" },
    { cwd: "/nowhere", files: filesWith({}) },
  );
  assert.equal(file, undefined);
  assert.deepEqual(env, { KAFKA_BROKERS: "", FRONTEND_BASE_URL: "http://localhost:5173" });
});

test("a bad Go setting names the key", () => {
  const files = (yaml: string) => ({ cwd: "/a", files: filesWith({ "/a/config.yaml": yaml }) });
  assert.throws(
    () => readGoDeployment({}, files("notification:\n  rpc:\n    timeout: soon\n")),
    /notification\.rpc\.timeout must be a Go duration/,
  );
  assert.throws(
    () => readGoDeployment({}, files("kafka:\n  enabled: true\n")),
    /kafka\.enabled is true but kafka\.brokers is empty/,
  );
  assert.throws(
    () => readGoDeployment({}, files("kafka:\n  enabled: maybe\n")),
    /kafka\.enabled must be true or false/,
  );
  assert.throws(
    () => readGoDeployment({}, files("database:\n  host: x\n")),
    /database\.host and database\.dbname go together/,
  );
  assert.throws(() => readGoDeployment({}, files("[1, 2]")), /must hold a YAML mapping/);
  assert.throws(() => readGoDeployment({}, files("a: [")), /is not valid YAML/);
  assert.throws(
    () => readGoDeployment({ SMARTFLOW_KAFKA_MAXRETRY: "many" }, files("")),
    /SMARTFLOW_KAFKA_MAXRETRY must be a whole number/,
  );
});

test("Go durations", () => {
  assert.equal(parseGoDuration("6s"), 6_000);
  assert.equal(parseGoDuration("1m"), 60_000);
  assert.equal(parseGoDuration("1h30m"), 5_400_000);
  assert.equal(parseGoDuration("1.5s"), 1_500);
  assert.equal(parseGoDuration("250ms"), 250);
  assert.equal(parseGoDuration("-2m"), -120_000);
  assert.equal(parseGoDuration("0"), 0);
  assert.equal(parseGoDuration("6000000000"), 6_000, "a bare number is nanoseconds");
  assert.equal(parseGoDuration("6"), 6e-6);
  assert.equal(parseGoDuration("6 s"), undefined);
  assert.equal(parseGoDuration("s"), undefined);
  assert.equal(parseGoDuration(""), undefined);
});
