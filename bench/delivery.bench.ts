/**
 * End to end: outbox row (written by another "service", not this process) → relay → Kafka → intake →
 * dispatcher → HTTPS POST to a fake Feishu answering in 20 ms.
 *
 * 1. Throughput: a backlog of N events across many users; notifications/s until the last POST arrives,
 *    against a baseline measured in the same run: a plain HTTPS client posting to the same fake server at the
 *    same concurrency (the ceiling any pipeline could reach here).
 * 2. Latency: 500 events/s offered for D seconds; p50/p99 from the outbox insert to the POST's arrival.
 *
 *   make bench     or   KAFKA_BROKERS=… npx tsx bench/delivery.bench.ts [events] [seconds]
 */

import { fork } from "node:child_process";
import { Agent, request } from "node:https";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config/load-config.ts";
import { createLogger } from "../src/lib/logger.ts";
import { caFile } from "../test/support/fake-feishu.ts";
import { brokers, outboxRow, percentile, unique, withDatabase } from "./support.ts";

const events = Number(process.argv[2] ?? 20_000);
const seconds = Number(process.argv[3] ?? 10);
const users = 4_000;
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 128);

const fakeProcess = fork(new URL("./fake-feishu-process.ts", import.meta.url).pathname, ["20"], {
  execArgv: ["--import", "tsx"],
});
const arrivals: { preview: string; at: number }[] = [];
const fake = await new Promise<{ host: string; origin: string; flowUrl: (k: string) => string }>(
  (resolve) => {
    fakeProcess.on(
      "message",
      (message: { type: string; host?: string; origin?: string; items?: typeof arrivals }) => {
        if (message.type === "ready" && message.host && message.origin) {
          const origin = message.origin;
          resolve({ host: message.host, origin, flowUrl: (k) => `${origin}/flow/api/trigger-webhook/${k}` });
        } else if (message.items) arrivals.push(...message.items);
      },
    );
  },
);

async function baseline(count: number): Promise<number> {
  const agent = new Agent({
    keepAlive: true,
    maxSockets: concurrency,
    ca: (await import("node:fs")).readFileSync(caFile),
  });
  const body = JSON.stringify({ event: "baseline", message: { summary: "x".repeat(200) } });
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        await new Promise<void>((resolve, reject) => {
          const req = request(fake.flowUrl("baselinekey0"), { method: "POST", agent }, (res) => {
            res.resume();
            res.on("end", resolve);
          });
          req.on("error", reject);
          req.end(body);
        });
      }
    }),
  );
  agent.destroy();
  return count / ((performance.now() - started) / 1000);
}

await withDatabase(async (url) => {
  const env = {
    LOG_LEVEL: "warn",
    DATABASE_URL: url,
    KAFKA_BROKERS: brokers().join(","),
    OUTBOX_SERVICES_NOTIFICATION_TOPIC: unique("bench.delivery"),
    OUTBOX_SERVICES_NOTIFICATION_GROUP_ID: unique("bench-delivery"),
    FEISHU_ALLOWED_HOSTS: fake.host,
    FEISHU_CA_FILE: caFile,
    DELIVERY_CONCURRENCY: String(concurrency),
    METRICS_ADDR: "",
  };
  const config = loadConfig(env);
  const app = createApp(config, { logger: createLogger("warn") });
  await app.start();
  const now = app.db.traits.time(new Date());
  // Channels for every user, then wait for the consumer group to settle.
  for (let i = 0; i < users; i += 1_000) {
    await app.db.kysely
      .insertInto("user_notification_channels")
      .values(
        Array.from({ length: Math.min(1_000, users - i) }, (_, j) => ({
          user_id: BigInt(i + j + 1),
          channel: "feishu_webhook",
          enabled: 1,
          webhook_url: fake.flowUrl(`benchkey${String(i + j + 1).padStart(6, "0")}`),
          auth_type: "none",
          bearer_token: "",
          webhook_kind: "flow_trigger",
          signing_secret: "",
          created_at: now,
          updated_at: now,
        })),
      )
      .execute();
  }

  const insertEvents = async (from: number, count: number, stamp: Date) => {
    const rows = Array.from({ length: count }, (_, k) =>
      outboxRow(app.route.topic, from + k, users, "bench", app.db.traits.time(stamp)),
    );
    for (let i = 0; i < rows.length; i += 1_000) {
      await app.db.kysely
        .insertInto("notification_outbox_messages")
        .values(rows.slice(i, i + 1_000))
        .execute();
    }
  };

  // Warm-up: the consumer joins its group and connections open.
  await insertEvents(0, 200, new Date());
  await waitForRequests(200, 60_000);

  // 1. Throughput.
  const before = arrivals.length;
  const baselineRate = await baseline(events);
  await waitForRequests(before + events, 60_000);
  const baselineRequests = arrivals.length - before;
  const startCount = arrivals.length;
  const started = performance.now();
  await insertEvents(1_000_000, events, new Date());
  await waitForRequests(startCount + events, 300_000);
  const pipelineRate = events / ((performance.now() - started) / 1000);
  console.log(
    `throughput: pipeline ${Math.round(pipelineRate)} notifications/s, baseline ${Math.round(baselineRate)} POST/s (${baselineRequests} requests)`,
  );

  // 2. Latency at 500/s offered: batches of 25 every 50 ms, each row stamped with its insert time.
  const sentAt = new Map<string, number>();
  const offset = 2_000_000;
  let offered = 0;
  const firstArrival = arrivals.length;
  const stopAt = performance.now() + seconds * 1000;
  while (performance.now() < stopAt) {
    const tick = performance.now();
    const from = offset + offered;
    for (let k = 0; k < 25; k++) sentAt.set(`asp_bench_${from + k}`, Date.now());
    await insertEvents(from, 25, new Date());
    offered += 25;
    const wait = 50 - (performance.now() - tick);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  await waitForRequests(firstArrival + offered, 60_000);
  const latencies = arrivals.slice(firstArrival).flatMap((r) => {
    const t0 = sentAt.get(r.preview);
    return t0 === undefined ? [] : [r.at - t0];
  });
  console.log(
    JSON.stringify({
      bench: "delivery",
      events,
      pipelineNotificationsPerSec: Math.round(pipelineRate),
      baselinePostsPerSec: Math.round(baselineRate),
      ratio: Number((pipelineRate / baselineRate).toFixed(2)),
      offeredPerSec: Math.round(offered / seconds),
      latencySamples: latencies.length,
      p50Ms: Math.round(percentile(latencies, 50)),
      p99Ms: Math.round(percentile(latencies, 99)),
    }),
  );
  await app.stop();
});
fakeProcess.disconnect();

async function waitForRequests(count: number, timeoutMs: number) {
  const deadline = performance.now() + timeoutMs;
  while (arrivals.length < count) {
    if (performance.now() > deadline) throw new Error(`only ${arrivals.length} of ${count} POSTs arrived`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
