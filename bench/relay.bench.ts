/**
 * Relay throughput: rows/s from a MariaDB backlog to Kafka, against raw kafkajs producer throughput measured
 * in the same run with the same batch size and message shape (the baseline).
 *
 *   make bench            or   KAFKA_BROKERS=… npx tsx bench/relay.bench.ts [rows] [rounds]
 */
import kafkajs from "kafkajs";
import { sql } from "kysely";
import { createDb } from "../src/db/database.ts";
import { migrateToLatest } from "../src/db/migrations.ts";
import { squareBackoffMs } from "../src/lib/backoff.ts";
import { systemClock } from "../src/lib/clock.ts";
import { createEventHub } from "../src/lib/event-hub.ts";
import { silentLogger } from "../src/lib/logger.ts";
import { createWakeup } from "../src/lib/sleep.ts";
import { createKafkaBus } from "../src/messaging/kafka-bus.ts";
import { encodeKafkaEnvelope, encodeRowEnvelope } from "../src/outbox/envelope.ts";
import type { OutboxEvents } from "../src/outbox/outbox-events.ts";
import { createOutboxRelay } from "../src/outbox/outbox-relay.ts";
import { OutboxStatus } from "../src/outbox/outbox-status.ts";
import { createRouteTable } from "../src/outbox/routes.ts";
import { outboxTable } from "../src/outbox/store/outbox-table.ts";
import { createRelayStore } from "../src/outbox/store/relay-store.ts";
import { brokers, eventPayload, median, unique, withDatabase } from "./support.ts";

const rows = Number(process.argv[2] ?? 50_000);
const rounds = Number(process.argv[3] ?? 3);
const batchSize = Number(process.env.RELAY_BATCH_SIZE ?? 1000);
const EVENT = "notification.feishu.requested";

async function rawProducer(topic: string, count: number): Promise<number> {
  const kafka = new kafkajs.Kafka({ clientId: unique("bench-raw"), brokers: brokers(), logLevel: 0 });
  const producer = kafka.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
  await producer.connect();
  const messages = Array.from({ length: count }, (_, i) => ({
    key: String(1 + (i % 1000)),
    value: encodeKafkaEnvelope({
      outboxId: i + 1,
      eventId: `asp_${i}`,
      eventType: EVENT,
      eventVersion: "1",
      aggregateId: `asp_${i}`,
      payload: JSON.stringify(eventPayload(1 + (i % 1000), i)),
      serviceName: "notification",
    }),
  }));
  const started = performance.now();
  for (let i = 0; i < count; i += batchSize) {
    await producer.send({ topic, messages: messages.slice(i, i + batchSize) });
  }
  const seconds = (performance.now() - started) / 1000;
  await producer.disconnect();
  return count / seconds;
}

async function relayRun(url: string, topic: string, count: number): Promise<number> {
  const db = createDb({ kind: "mysql", url }, 4);
  const route = {
    ...createRouteTable().service("notification"),
    topic,
    table: unique("bench_outbox").replaceAll("-", "_"),
  };
  await migrateToLatest(db.kysely, db.traits, { outbox: route.table });
  // The backlog: multi-row inserts of rows in the Go producer's format.
  const now = db.traits.time(new Date());
  for (let i = 0; i < count; i += 1_000) {
    const values = Array.from({ length: Math.min(1_000, count - i) }, (_, j) => {
      const n = i + j;
      const user = 1 + (n % 1000);
      return {
        biz_type: EVENT,
        service_name: "notification",
        topic,
        message_key: String(user),
        payload: encodeRowEnvelope({
          eventId: `asp_${n}`,
          eventType: EVENT,
          eventVersion: "1",
          aggregateId: `asp_${n}`,
          payload: JSON.stringify(eventPayload(user, n)),
        }),
        status: "pending",
        retry_count: 0,
        max_retry: 20,
        next_retry_at: now,
        created_at: now,
        updated_at: now,
      };
    });
    await db.kysely
      .insertInto(route.table as "notification_outbox_messages")
      .values(values)
      .execute();
  }
  const bus = createKafkaBus({
    brokers: brokers(),
    clientId: unique("bench-relay"),
    logger: silentLogger,
    partitionsConcurrently: 3,
    maxBatch: 500,
    connectTimeoutMs: 3_000,
  });
  await bus.ensureTopic(topic, 3);
  await bus.publish(topic, [{ key: "warmup", value: "{}" }]);
  const store = createRelayStore(
    outboxTable(db.kysely, db.traits, route.table, (n) => squareBackoffMs(n, 1_000, 100_000)),
  );
  const events = createEventHub<OutboxEvents>();
  const relay = createOutboxRelay({
    store,
    bus,
    route,
    clock: systemClock,
    logger: silentLogger,
    events,
    wakeup: createWakeup(),
    publishTimeoutMs: 10_000,
    options: { batchSize, pollIntervalMs: 20 },
  });
  let published = 0;
  const controller = new AbortController();
  const done = new Promise<void>((resolve) => {
    events.on("relay:published", (e) => {
      published += e.ids.length;
      if (published >= count) resolve();
    });
  });
  const started = performance.now();
  const running = relay.run(controller.signal);
  await done;
  const seconds = (performance.now() - started) / 1000;
  controller.abort();
  await running;
  const { rows: left } = await sql<{ n: number }>`select count(*) as n from ${sql.table(route.table)}
    where status <> ${OutboxStatus.claimed}`.execute(db.kysely);
  if (Number(left[0]?.n) !== 0) throw new Error(`${left[0]?.n} rows were not claimed and published`);
  await bus.close();
  await db.close();
  return count / seconds;
}

await withDatabase(async (url) => {
  const raw: number[] = [];
  const relayed: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    raw.push(await rawProducer(unique("bench.raw"), rows));
    relayed.push(await relayRun(url, unique("bench.relay"), rows));
    console.log(
      `round ${round}: raw kafkajs ${Math.round(raw.at(-1) ?? 0)} msg/s, relay ${Math.round(relayed.at(-1) ?? 0)} rows/s`,
    );
  }
  const r = median(raw);
  const m = median(relayed);
  console.log(
    JSON.stringify({
      bench: "relay",
      rows,
      rounds,
      rawKafkajsMsgPerSec: Math.round(r),
      relayRowsPerSec: Math.round(m),
      ratio: Number((m / r).toFixed(2)),
    }),
  );
});
