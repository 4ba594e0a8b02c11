/**
 * One instance against two, and the shared send budget against the per-process one: relay and delivery
 * throughput of a backlog through whole apps (`createApp`, on one MariaDB database, one topic with 4
 * partitions and one consumer group), outbox row → relay → Kafka → intake → dispatcher (its send budget) →
 * HTTPS POST to a fake Feishu (own process) answering in 20 ms. The users' webhooks are distinct, so the
 * limits are checked on every send but never bind: what is measured is their cost, and how the pipeline
 * scales. Configurations alternate in order from round to round; each has a database and topic of its own.
 *
 *   make bench BENCH=instances     or   KAFKA_BROKERS=… npx tsx bench/instances.bench.ts [events] [rounds]
 */

import { fork } from "node:child_process";
import { type App, createApp } from "../src/app.ts";
import { loadConfig } from "../src/config/load-config.ts";
import { createLogger } from "../src/lib/logger.ts";
import { caFile } from "../test/support/fake-feishu.ts";
import { brokers, median, outboxRow, unique, withDatabase } from "./support.ts";

const events = Number(process.argv[2] ?? 10_000);
const rounds = Number(process.argv[3] ?? 3);
const users = 2_000;

interface Setup {
  readonly name: string;
  readonly instances: number;
  readonly scope: "database" | "process";
}
const setups: Setup[] = [
  { name: "1 instance, shared budget", instances: 1, scope: "database" },
  { name: "2 instances, shared budget", instances: 2, scope: "database" },
  { name: "1 instance, process budget", instances: 1, scope: "process" },
];

const fakeProcess = fork(new URL("./fake-feishu-process.ts", import.meta.url).pathname, ["20"], {
  execArgv: ["--import", "tsx"],
});
let arrivals = 0;
const fake = await new Promise<{ host: string; flowUrl: (k: string) => string }>((resolve) => {
  fakeProcess.on(
    "message",
    (message: { type: string; host?: string; origin?: string; items?: unknown[] }) => {
      if (message.type === "ready" && message.host && message.origin) {
        const origin = message.origin;
        resolve({ host: message.host, flowUrl: (k) => `${origin}/flow/api/trigger-webhook/${k}` });
      } else if (message.items) arrivals += message.items.length;
    },
  );
});

async function measure(setup: Setup): Promise<{ relay: number; delivery: number }> {
  return withDatabase(async (url) => {
    const env = {
      LOG_LEVEL: "warn",
      DATABASE_URL: url,
      KAFKA_BROKERS: brokers().join(","),
      OUTBOX_SERVICES_NOTIFICATION_TOPIC: unique("bench.instances"),
      OUTBOX_SERVICES_NOTIFICATION_GROUP_ID: unique("bench-instances"),
      OUTBOX_TOPIC_PARTITIONS: "4",
      FEISHU_ALLOWED_HOSTS: fake.host,
      FEISHU_CA_FILE: caFile,
      DELIVERY_RATE_LIMIT_SCOPE: setup.scope,
      GRPC_ADDR: "127.0.0.1:0",
      METRICS_ADDR: "",
    };
    const apps: App[] = [];
    let published = 0;
    for (let i = 0; i < setup.instances; i++) {
      const app = createApp(loadConfig(env), { logger: createLogger("warn") });
      app.events.on("relay:published", (event) => {
        published += event.ids.length;
      });
      await app.start();
      apps.push(app);
    }
    const [app] = apps as [App];
    const now = app.db.traits.time(new Date());
    await app.db.kysely
      .insertInto("user_notification_channels")
      .values(
        Array.from({ length: users }, (_, j) => ({
          user_id: BigInt(j + 1),
          channel: "feishu_webhook",
          enabled: 1,
          webhook_url: fake.flowUrl(`instkey${String(j + 1).padStart(6, "0")}`),
          auth_type: "none",
          bearer_token: "",
          webhook_kind: "flow_trigger",
          signing_secret: "",
          created_at: now,
          updated_at: now,
        })),
      )
      .execute();
    // Warm-up: the group settles over both members, connections open.
    let base = arrivals;
    await insertEvents(app, 0, 400);
    await waitFor(() => arrivals >= base + 400, 60_000);
    base = arrivals;
    const basePublished = published;
    const started = performance.now();
    await insertEvents(app, 1_000_000, events);
    let relayDone = 0;
    await waitFor(() => {
      if (!relayDone && published >= basePublished + events) relayDone = performance.now();
      return arrivals >= base + events;
    }, 300_000);
    const elapsed = (performance.now() - started) / 1000;
    await Promise.all(apps.map((a) => a.stop()));
    return { relay: events / ((relayDone - started) / 1000), delivery: events / elapsed };
  });
}

async function insertEvents(app: App, from: number, count: number) {
  const stamp = app.db.traits.time(new Date());
  for (let i = 0; i < count; i += 1_000) {
    const rows = Array.from({ length: Math.min(1_000, count - i) }, (_, k) =>
      outboxRow(app.route.topic, from + i + k, users, "inst", stamp),
    );
    await app.db.kysely.insertInto("notification_outbox_messages").values(rows).execute();
  }
}

async function waitFor(done: () => boolean, timeoutMs: number) {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out (${arrivals} POSTs arrived)`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const figures = new Map<string, { relay: number[]; delivery: number[] }>(
  setups.map((s) => [s.name, { relay: [], delivery: [] }]),
);
for (let round = 0; round < rounds; round++) {
  for (const setup of round % 2 ? [...setups].reverse() : setups) {
    const result = await measure(setup);
    figures.get(setup.name)?.relay.push(result.relay);
    figures.get(setup.name)?.delivery.push(result.delivery);
    console.log(
      `${setup.name}: relay ${Math.round(result.relay)} rows/s, delivery ${Math.round(result.delivery)}/s`,
    );
  }
}
const med = (name: string, what: "relay" | "delivery") => median(figures.get(name)?.[what] ?? []);
const [one, two, local] = setups.map((s) => s.name) as [string, string, string];
const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
console.log(
  JSON.stringify({
    bench: "instances",
    events,
    rounds,
    relayRowsPerSec: { one: Math.round(med(one, "relay")), two: Math.round(med(two, "relay")) },
    deliveryPerSec: {
      one: Math.round(med(one, "delivery")),
      two: Math.round(med(two, "delivery")),
      oneProcessBudget: Math.round(med(local, "delivery")),
    },
    relayTwoOverOne: ratio(med(two, "relay"), med(one, "relay")),
    deliveryTwoOverOne: ratio(med(two, "delivery"), med(one, "delivery")),
    sharedOverProcessBudget: ratio(med(one, "delivery"), med(local, "delivery")),
  }),
);
fakeProcess.disconnect();
