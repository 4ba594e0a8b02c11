import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, type WriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { botToken, goRow, OUTBOX_TABLE, userOf } from "../faults/load.ts";
import { caFile, startFakeFeishu } from "../support/fake-feishu.ts";
import { testBrokers, uniqueName } from "../support/kafka.ts";
import { createTestDatabase, type TestDatabase } from "../support/mysql.ts";

/** The payload's `trace_id` that makes test/e2e/crash-service.ts abort while handling the event. */
const CRASH_TRACE_ID = "crash:abort";
const USERS = 12;
const POISON = 5;
const MAX_CRASHES = 3;

/** One start of the service (test/e2e/crash-service.ts: the real app, which aborts on the poison). */
function startInstance(env: Record<string, string>, log: WriteStream) {
  const child = spawn(process.execPath, ["--import", "tsx", "test/e2e/crash-service.ts"], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const messages: string[] = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    log.write(`${line}\n`);
    try {
      messages.push(String((JSON.parse(line) as { msg?: unknown }).msg));
    } catch {
      messages.push(line);
    }
  });
  child.stderr.on("data", (chunk: Buffer) => log.write(chunk));
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, messages, exited };
}

async function insertGoRows(database: TestDatabase, topic: string, numbers: readonly number[]) {
  const stamp = new Date();
  const rows = numbers.map((n) => {
    const row = goRow(n, USERS, topic, stamp);
    if (n === POISON) row[4] = String(row[4]).replace(`trace_faults_${n}`, CRASH_TRACE_ID);
    return row;
  });
  const marks = rows.map((row) => `(${row.map(() => "?").join(", ")})`).join(", ");
  await database.query(
    `insert into ${OUTBOX_TABLE} (biz_type, service_name, topic, message_key, payload, status, retry_count,
      max_retry, next_retry_at, last_error, published_at, consumed_at, created_at, updated_at) values ${marks}`,
    rows.flat(),
  );
}

async function poisonRow(database: TestDatabase) {
  const [row] = await database.query<{ status: string; last_error: string | null }>(
    `select status, last_error from ${OUTBOX_TABLE} where payload like ?`,
    [`%${CRASH_TRACE_ID}%`],
  );
  return row;
}

/** Polls the database (another process writes it; there is no event to await across processes). */
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await delay(100);
  }
}

test("a row whose handling kills the process is dead after OUTBOX_MAX_CRASHES crashes; the rest is delivered and the service stays up", {
  timeout: 240_000,
}, async () => {
  const database = await createTestDatabase();
  const fake = await startFakeFeishu();
  const topic = uniqueName("sfn.crash");
  const env = {
    LOG_LEVEL: "info",
    DATABASE_URL: database.url,
    KAFKA_BROKERS: testBrokers().join(","),
    KAFKA_SESSION_TIMEOUT_MS: "6000",
    OUTBOX_SERVICES_NOTIFICATION_TOPIC: topic,
    OUTBOX_SERVICES_NOTIFICATION_GROUP_ID: uniqueName("sfn-crash-group"),
    OUTBOX_MAX_CRASHES: String(MAX_CRASHES),
    GRPC_ADDR: "127.0.0.1:0",
    METRICS_ADDR: "127.0.0.1:0",
    FEISHU_ALLOWED_HOSTS: fake.host,
    FEISHU_CA_FILE: caFile,
    FRONTEND_BASE_URL: "https://app.crash.test",
    // A record taken in by an instance that then died is sent after 3 s (default 2 min), found by a scan
    // every second.
    DELIVERY_STRANDED_AFTER_MS: "3000",
    DELIVERY_RETRY_SCAN_INTERVAL_MS: "1000",
    DELIVERY_SENDING_LEASE_MS: "4000",
    FEISHU_TIMEOUT_MS: "1500",
  };
  const logFile = join(tmpdir(), `sfn-crash-loop-${process.pid}.log`);
  const log = createWriteStream(logFile);
  // The orchestrator: whenever the service dies, start it again (at most MAX_CRASHES + 3 starts).
  const exits: [number | null, NodeJS.Signals | null][] = [];
  let current = startInstance(env, log);
  let starts = 1;
  let stopping = false;
  const supervise = (async () => {
    for (;;) {
      const exit = await current.exited;
      if (stopping) return;
      exits.push(exit);
      if (starts >= MAX_CRASHES + 3) return;
      current = startInstance(env, log);
      starts++;
    }
  })();
  try {
    await until(
      "the first instance started",
      async () => (current.messages.includes("smartflow-notification started") ? true : undefined),
      60_000,
    );
    const now = new Date();
    for (let user = 1; user <= USERS; user++) {
      await database.query(
        `insert into user_notification_channels (user_id, channel, enabled, webhook_url, auth_type, bearer_token,
          webhook_kind, signing_secret, created_at, updated_at) values (?, 'feishu_webhook', 1, ?, 'none', '', 'group_bot', '', ?, ?)`,
        [user, fake.botUrl(botToken(user)), now, now],
      );
    }
    const numbers = Array.from({ length: USERS }, (_, n) => n);
    await insertGoRows(database, topic, numbers);

    const dead = await until(
      "the poison row is dead",
      async () => {
        const row = await poisonRow(database);
        return row?.status === "dead" ? row : undefined;
      },
      180_000,
    );
    assert.match(
      dead.last_error ?? "",
      /^handling crashed the process 3 times \(started 3 times, finished 0;/,
    );
    assert.equal(exits.length, MAX_CRASHES, `the process crashed ${MAX_CRASHES} times, then stayed up`);
    for (const [code, signal] of exits)
      assert.ok(signal === "SIGABRT" || code === 134, `exit ${code} ${signal}`);
    assert.equal(starts, MAX_CRASHES + 1);

    // Every other notification reaches Feishu, the last ones from the instance that stays up.
    for (const n of numbers.filter((n) => n !== POISON)) {
      await fake.waitForRequests(botToken(userOf(n, USERS)), 1, 60_000);
    }
    assert.equal(fake.requestsFor(botToken(userOf(POISON, USERS))).length, 0, "the poison was never sent");
    // The survivor keeps consuming: a notification written now goes out too.
    await insertGoRows(database, topic, [USERS + 1]);
    await fake.waitForRequests(botToken(userOf(USERS + 1, USERS)), 2, 60_000);
    assert.equal(current.child.exitCode, null, "the service is still up");
    assert.equal(exits.length, MAX_CRASHES);
  } finally {
    stopping = true;
    const child: ChildProcess = current.child;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await current.exited;
    }
    await supervise;
    await fake.close();
    await database.drop();
    log.end();
  }
});
