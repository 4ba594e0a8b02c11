import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { goTables, goWriter } from "../support/go-tables.ts";
import { legacyClient } from "../support/grpc-clients.ts";
import { testBrokers, uniqueName } from "../support/kafka.ts";
import { createTestDatabase, mysqlServerUrl } from "../support/mysql.ts";

const main = fileURLToPath(new URL("../../src/main.ts", import.meta.url));
const tsx = import.meta.resolve("tsx");

/**
 * A few variables a process needs, and none of this service's own keys but one: only the Go deployment's. The
 * exception is METRICS_ADDR, whose fixed default port would clash between runs on one machine.
 */
function bareEnv(extra: Record<string, string>): Record<string, string> {
  const keep = ["PATH", "HOME", "TMPDIR", "LANG"].filter((key) => process.env[key] !== undefined);
  const own = { METRICS_ADDR: "127.0.0.1:0" };
  return { ...Object.fromEntries(keep.map((key) => [key, process.env[key] as string])), ...own, ...extra };
}

/** The service as a Go deployment would run it in place of the Go binary: in the directory of config.yaml. */
function startIn(cwd: string, env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", tsx, main], {
    cwd,
    env: bareEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = "";
  const waiters = new Set<() => void>();
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    for (const line of chunk.split("\n").filter(Boolean))
      lines.push(JSON.parse(line) as Record<string, unknown>);
    for (const check of waiters) check();
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  return {
    child,
    stderr: () => stderr,
    /** The first log line that satisfies `match`, once it is written. */
    line: (what: string, match: (line: Record<string, unknown>) => boolean, timeoutMs = 60_000) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const check = () => {
          const found = lines.find(match);
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no log line: ${what}; stderr: ${stderr}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}

test("started with only a Go config.yaml and a SMARTFLOW_* override: same database, topic and address", async () => {
  const database = await createTestDatabase();
  const dir = await mkdtemp(join(tmpdir(), "sfn-go-config-"));
  const topic = uniqueName("smartflow.notification.outbox");
  const group = uniqueName("smartflow-notification-outbox-consumer");
  const server = new URL(mysqlServerUrl);
  try {
    for (const ddl of goTables) await database.query(ddl);
    const go = goWriter(database);
    await go.channel(851, "https://www.feishu.cn/flow/api/trigger-webhook/goconfig0851key/", false);
    // SmartFlow's config.docker.yaml, with this test's database, brokers, topic and group.
    await writeFile(
      join(dir, "config.yaml"),
      `server:
  port: 8080
database:
  host: ${server.hostname}
  port: ${server.port || 3306}
  user: ${decodeURIComponent(server.username) || "root"}
  password: "${decodeURIComponent(server.password)}"
  dbname: ${database.name}
kafka:
  enabled: true
  brokers:
${testBrokers()
  .map((broker) => `    - "${broker}"`)
  .join("\n")}
  maxRetry: 20
outbox:
  services:
    notification:
      topic: "${topic}"
      groupID: "${group}"
      table: "notification_outbox_messages"
notification:
  rpc:
    listenOn: "0.0.0.0:9082"
    timeout: 6s
  frontendBaseURL: "https://smartflow.example.com"
  retryScanEvery: 1m
  retryBatchSize: 50
`,
    );
    const port = await freePort();
    // The container's zone, which the Go process had too (loc=Local): the default DATABASE_TIME_ZONE follows it.
    const service = startIn(dir, {
      TZ: "Asia/Shanghai",
      SMARTFLOW_NOTIFICATION_RPC_LISTENON: `127.0.0.1:${port}`,
    });
    try {
      const read = await service.line(
        "the Go config",
        (l) => l.msg === "read the Go deployment's configuration",
      );
      assert.equal(read.file, join(dir, "config.yaml"));
      assert.deepEqual(read.keys, {
        DATABASE_URL: "database.host, database.dbname, database.port, database.user, database.password",
        KAFKA_BROKERS: "kafka.enabled, kafka.brokers",
        OUTBOX_MAX_RETRY: "kafka.maxRetry",
        OUTBOX_SERVICES_NOTIFICATION_TOPIC: "outbox.services.notification.topic",
        OUTBOX_SERVICES_NOTIFICATION_GROUP_ID: "outbox.services.notification.groupID",
        OUTBOX_SERVICES_NOTIFICATION_TABLE: "outbox.services.notification.table",
        GRPC_ADDR: "SMARTFLOW_NOTIFICATION_RPC_LISTENON",
        RPC_TIMEOUT_MS: "notification.rpc.timeout",
        FRONTEND_BASE_URL: "notification.frontendBaseURL",
        DELIVERY_RETRY_SCAN_INTERVAL_MS: "notification.retryScanEvery",
        DELIVERY_RETRY_BATCH_SIZE: "notification.retryBatchSize",
      });
      const started = await service.line("started", (l) => l.msg === "smartflow-notification started");
      assert.deepEqual(
        [started.bus, started.table, started.topic, started.group],
        ["kafka", "notification_outbox_messages", topic, group],
      );

      // The gateway's call, on the address the override names, answered from the Go deployment's database.
      const client = legacyClient(`127.0.0.1:${port}`);
      try {
        const channel = await client.call<Record<string, unknown>>("GetFeishuWebhook", { user_id: 851 });
        assert.deepEqual(
          [channel.configured, channel.enabled, channel.webhook_url_mask],
          [true, false, "https://www.feishu.cn/flow/api/trigger-webhook/goco...1key"],
        );
      } finally {
        client.close();
      }

      // A producer's row in the Go deployment's table flows through its topic and group.
      const outboxId = await go.outbox(topic, 851, "asp_851");
      const attempt = await service.line(
        "the Go row's delivery attempt",
        (l) => l.msg === "notification delivery attempt finished" && l.outbox_id === outboxId,
      );
      assert.equal(attempt.status, "skipped", "the user's channel is disabled");
      const [row] = await database.query<{ status: string }>(
        "select status from notification_outbox_messages where id = ?",
        [outboxId],
      );
      assert.equal(row?.status, "consumed");

      service.child.kill("SIGTERM");
      const [code] = await once(service.child, "exit");
      assert.equal(code, 0, service.stderr());
    } finally {
      if (service.child.exitCode === null) service.child.kill("SIGKILL");
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    await database.drop();
  }
});

test("a bad value in the Go config.yaml stops startup with exit code 2 and names the Go key", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sfn-go-config-"));
  try {
    await writeFile(join(dir, "config.yaml"), "notification:\n  rpc:\n    timeout: soon\n");
    const service = startIn(dir, {});
    const [code] = await once(service.child, "exit");
    assert.equal(code, 2);
    assert.match(
      service.stderr(),
      /configuration error: Go deployment config: notification\.rpc\.timeout must be a Go duration/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
