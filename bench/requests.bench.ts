/**
 * RequestFeishuNotification under load: 64 concurrent @grpc/grpc-js callers (4 channels × 16, its own process,
 * bench/requests-load.ts), distinct event ids, served by this service (`createApp`) on MariaDB + Kafka and on
 * the embedded default (SQLite + in-process bus), against a bare @grpc/grpc-js server answering the same
 * call with a constant response of the same shape, in alternating rounds of the same run.
 *   make bench BENCH=requests    or   KAFKA_BROKERS=… npx tsx bench/requests.bench.ts [calls] [rounds]
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { type App, createApp } from "../src/app.ts";
import { loadConfig } from "../src/config/load-config.ts";
import { RequestFeishuNotificationResponseSchema } from "../src/gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import { createLogger } from "../src/lib/logger.ts";
import { sleep } from "../src/lib/sleep.ts";
import { OutboxStatus } from "../src/outbox/outbox-status.ts";
import { brokers, median, unique, withDatabase } from "./support.ts";

const run = promisify(execFile);
const calls = process.argv[2] ?? "10000";
const rounds = Number(process.argv[3] ?? 3);

type Load = {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  firstError?: string;
  /** CPU time of this process per call: the server, and its pipeline until the outbox is drained. */
  cpuUsPerCall: number;
};

/** Calls until `calls` are answered; the CPU per call counts until `settled` too (the pipeline's share). */
async function load(port: number, settled?: () => Promise<void>): Promise<Load> {
  const args = ["--import", "tsx", "bench/requests-load.ts", `127.0.0.1:${port}`, calls, "4", "16"];
  const cpu = process.cpuUsage();
  const { stdout } = await run(process.execPath, [...args, unique("evt-bench")]);
  await settled?.();
  const used = process.cpuUsage(cpu);
  const result = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as Omit<Load, "cpuUsPerCall">;
  return { ...result, cpuUsPerCall: Math.round((used.user + used.system) / Number(calls)) };
}

async function bareServer(): Promise<{ port: number; stop: () => void }> {
  const answer = Buffer.from(
    toBinary(
      RequestFeishuNotificationResponseSchema,
      create(RequestFeishuNotificationResponseSchema, {
        outboxId: 123_456n,
        duplicate: false,
        dedupeKey: "evt-bench-1234abcd:1234",
      }),
    ),
  );
  const server = new grpc.Server();
  const identity = (v: Buffer) => v;
  server.addService(
    {
      requestFeishuNotification: {
        path: "/smartflow.notification.v1.NotificationOpsService/RequestFeishuNotification",
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    {
      requestFeishuNotification: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) =>
        callback(null, answer),
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, p) =>
      error ? reject(error) : resolve(p),
    ),
  );
  return { port, stop: () => server.forceShutdown() };
}

type Variant = { name: string; env: Record<string, string> };

/** One transaction per request (REQUEST_BATCH_MAX_SIZE=1, as before batching), then the default batching. */
const variants: Variant[] = [
  { name: "unbatched", env: { REQUEST_BATCH_MAX_SIZE: "1" } },
  { name: "batched", env: {} },
];

/** Waits until every outbox row is consumed (the pipeline behind the calls has done their work too). */
async function drained(app: App): Promise<void> {
  for (;;) {
    const [row] = await app.db.kysely
      .selectFrom(app.route.table as "notification_outbox_messages")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("status", "in", [OutboxStatus.pending, OutboxStatus.claimed])
      .execute();
    if (Number(row?.n ?? 0) === 0) return;
    await sleep(50);
  }
}

/** One app per variant; each of its rounds right after a round of bare grpc-js; medians and ratios. */
async function measure(name: string, env: Record<string, string>) {
  const bare = await bareServer();
  const baseline: Load[] = [];
  const out: Record<string, unknown>[] = [];
  try {
    for (const variant of variants) {
      const app = createApp(
        loadConfig({ LOG_LEVEL: "warn", GRPC_ADDR: "127.0.0.1:0", METRICS_ADDR: "", ...env, ...variant.env }),
        { logger: createLogger("warn") },
      );
      await app.start();
      const ours: Load[] = [];
      const bareHere: Load[] = [];
      try {
        for (let round = 1; round <= rounds; round++) {
          bareHere.push(await load(bare.port));
          ours.push(await load(app.apiPort(), () => drained(app)));
          const o = ours.at(-1);
          console.log(
            `${name} ${variant.name} round ${round}: bare grpc-js ${bareHere.at(-1)?.rps} req/s, service ${o?.rps} req/s (CPU ${bareHere.at(-1)?.cpuUsPerCall} vs ${o?.cpuUsPerCall} µs/call, p50 ${o?.p50Ms} ms, p99 ${o?.p99Ms} ms, ${o?.errors} errors${o?.firstError ? `: ${o.firstError}` : ""})`,
          );
        }
      } finally {
        await app.stop();
      }
      baseline.push(...bareHere);
      const b = median(bareHere.map((r) => r.rps));
      const o = median(ours.map((r) => r.rps));
      out.push({
        variant: variant.name,
        serviceRps: o,
        bareGrpcJsRps: b,
        ratio: Number((o / b).toFixed(3)),
        serviceP50Ms: median(ours.map((r) => r.p50Ms)),
        serviceP99Ms: median(ours.map((r) => r.p99Ms)),
        errors: ours.reduce((sum, r) => sum + r.errors, 0),
        cpuUsPerCall: median(ours.map((r) => r.cpuUsPerCall)),
        bareCpuUsPerCall: median(bareHere.map((r) => r.cpuUsPerCall)),
        roundsRps: ours.map((r) => r.rps),
        bareRoundsRps: bareHere.map((r) => r.rps),
      });
    }
  } finally {
    bare.stop();
  }
  return { store: name, bareP99Ms: median(baseline.map((r) => r.p99Ms)), variants: out };
}

const only = process.env.REQUESTS_STORE ?? "all";
const results = [];
if (only === "all" || only === "mysql") {
  results.push(
    await withDatabase((url) =>
      measure("mariadb+kafka", {
        DATABASE_URL: url,
        KAFKA_BROKERS: brokers().join(","),
        OUTBOX_SERVICES_NOTIFICATION_TOPIC: unique("bench.requests"),
        OUTBOX_SERVICES_NOTIFICATION_GROUP_ID: unique("bench-requests"),
      }),
    ),
  );
}
if (only === "all" || only === "sqlite") {
  const dir = await mkdtemp(join(tmpdir(), "sfn-requests-bench-"));
  try {
    results.push(await measure("sqlite", { DATABASE_URL: `sqlite:${join(dir, "bench.sqlite")}` }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
console.log(JSON.stringify({ bench: "requests", calls: Number(calls), callers: 64, results }));
