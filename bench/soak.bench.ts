/**
 * Soak: the BUILT service (`node dist/main.js`, as the image runs it) on MariaDB + Kafka, under ~500 events/s
 * through the whole pipeline (outbox rows written as SmartFlow's producers write them → relay → Kafka →
 * intake → HTTPS POST to a fake Feishu answering in 20 ms) plus gRPC calls (GetFeishuWebhook ~200/s, the
 * operations service's GetStats and ListDeadOutboxMessages every few seconds). Samples the service
 * process's RSS (/proc/<pid>/status) every SOAK_SAMPLE_MS and reports RSS idle (the baseline, before any
 * load), at the start and end of the load, the peak (VmHWM), and the trend: the least-squares slope over the
 * second half of the run, in MB/min; the same for the heap left live after each full GC (the service runs
 * with --trace-gc). Exits 1 when the RSS trend exceeds SOAK_MAX_RSS_SLOPE_MB_PER_MIN (default 2), the live
 * heap's exceeds SOAK_MAX_SLOPE_MB_PER_MIN (default 1; bench/README.md says why), the peak exceeds
 * SOAK_MAX_RSS_MB (default 200), or the pipeline fell behind. The service runs with the Dockerfile's node
 * flags (its `CMD`), unless SOAK_NODE_ARGS says others.
 *
 *   make build && make bench BENCH=soak       SOAK_MS (default 600000: 10 minutes) shortens it
 */
import { fork, spawn } from "node:child_process";
import { createServer } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import mysql from "mysql2/promise";
import { zonedTime } from "../src/db/zoned-time.ts";
import { GetFeishuWebhookRequestSchema } from "../src/gen/smartflow/notification/notification_pb.ts";
import {
  GetStatsRequestSchema,
  ListDeadOutboxMessagesRequestSchema,
} from "../src/gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import { encodeRowEnvelope } from "../src/outbox/envelope.ts";
import { caFile } from "../test/support/fake-feishu.ts";
import { imageNodeArgs } from "../test/support/image-command.ts";
import { type RssSample, readRss, sampleRss, secondHalf, slopeMbPerMin } from "./rss.ts";
import { brokers, eventPayload, unique, withDatabase } from "./support.ts";

const soakMs = Number(process.env.SOAK_MS ?? 600_000);
const sampleMs = Number(process.env.SOAK_SAMPLE_MS ?? 2_000);
const maxSlope = Number(process.env.SOAK_MAX_SLOPE_MB_PER_MIN ?? 1);
const maxRssSlope = Number(process.env.SOAK_MAX_RSS_SLOPE_MB_PER_MIN ?? 2);
const maxRssMb = Number(process.env.SOAK_MAX_RSS_MB ?? 200);
/** The Dockerfile's `CMD` flags, unless SOAK_NODE_ARGS says others (`SOAK_NODE_ARGS=` for none). */
const serviceNodeArgs = await imageNodeArgs(process.env.SOAK_NODE_ARGS);
const users = 4_000;
const EVENT = "notification.feishu.requested";
const TOKEN = "soak-token";
const time = zonedTime("local");

let delivered = 0;
const fakeProcess = fork(new URL("./fake-feishu-process.ts", import.meta.url).pathname, ["20"], {
  execArgv: ["--import", "tsx"],
});
const fake = await new Promise<{ host: string; origin: string }>((resolve) => {
  fakeProcess.on(
    "message",
    (message: { type: string; host?: string; origin?: string; items?: unknown[] }) => {
      if (message.type === "ready" && message.host && message.origin) {
        resolve({ host: message.host, origin: message.origin });
      } else if (message.items) delivered += message.items.length;
    },
  );
});

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

/** Unary calls with bytes in and out: the bench needs no generated client. */
function rpcClient(port: number) {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const auth = new grpc.Metadata();
  auth.set("authorization", `Bearer ${TOKEN}`);
  const counts = { ok: 0, failed: 0 };
  const call = (path: string, body: Uint8Array, metadata = new grpc.Metadata()) =>
    new Promise<void>((resolve) => {
      client.makeUnaryRequest(
        path,
        (v: Uint8Array) => Buffer.from(v),
        (v: Buffer) => v,
        body,
        metadata,
        { deadline: Date.now() + 5_000 },
        (error) => {
          if (error) counts.failed += 1;
          else counts.ok += 1;
          resolve();
        },
      );
    });
  return {
    counts,
    webhook: (userId: number) =>
      call(
        "/smartflow.notification.Notification/GetFeishuWebhook",
        toBinary(
          GetFeishuWebhookRequestSchema,
          create(GetFeishuWebhookRequestSchema, { userId: BigInt(userId) }),
        ),
      ),
    ops: () =>
      Promise.all([
        call(
          "/smartflow.notification.v1.NotificationOpsService/GetStats",
          toBinary(GetStatsRequestSchema, create(GetStatsRequestSchema)),
          auth,
        ),
        call(
          "/smartflow.notification.v1.NotificationOpsService/ListDeadOutboxMessages",
          toBinary(
            ListDeadOutboxMessagesRequestSchema,
            create(ListDeadOutboxMessagesRequestSchema, { pageSize: 50 }),
          ),
          auth,
        ),
      ]),
    close: () => client.close(),
  };
}

const eventRow = (n: number, topic: string, now: string) => {
  const user = 1 + (n % users);
  const payload = {
    ...eventPayload(user, n),
    dedupe_key: `${user}:soak:${n}`,
    target_url: `/assistant/c${n}`,
  };
  const envelope = encodeRowEnvelope({
    eventId: `asp_${n}`,
    eventType: EVENT,
    eventVersion: "1",
    aggregateId: `asp_${n}`,
    payload: JSON.stringify(payload),
  });
  return [EVENT, "notification", topic, String(user), envelope, "pending", 0, 20, now, now, now];
};

const result = await withDatabase(async (url) => {
  const topic = unique("bench.soak");
  const port = await freePort();
  // --trace-gc: each full GC prints the heap left live after it, read below for the leak trend.
  const nodeArgs = ["--trace-gc", ...serviceNodeArgs];
  const service = spawn(process.execPath, [...nodeArgs, "dist/main.js"], {
    stdio: ["ignore", "pipe", "inherit"],
    env: {
      PATH: process.env.PATH,
      LOG_LEVEL: "warn",
      DATABASE_URL: url,
      KAFKA_BROKERS: brokers().join(","),
      OUTBOX_SERVICES_NOTIFICATION_TOPIC: topic,
      OUTBOX_SERVICES_NOTIFICATION_GROUP_ID: unique("bench-soak"),
      FEISHU_ALLOWED_HOSTS: fake.host,
      FEISHU_CA_FILE: caFile,
      GRPC_ADDR: `127.0.0.1:${port}`,
      METRICS_ADDR: "127.0.0.1:0",
      API_TOKEN: TOKEN,
    },
  });
  const pid = service.pid ?? 0;
  const liveHeap: { atMs: number; mb: number }[] = [];
  let heapOrigin = 0;
  let partial = "";
  service.stdout?.on("data", (chunk: Buffer) => {
    const lines = (partial + chunk.toString("utf8")).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      const gc = /Mark-Compact [\d.]+ \([\d.]+\) -> ([\d.]+) \(/.exec(line);
      if (gc && heapOrigin > 0) liveHeap.push({ atMs: performance.now() - heapOrigin, mb: Number(gc[1]) });
      else if (!gc && !line.includes("Scavenge") && !line.includes("Mark-Compact"))
        process.stdout.write(`${line}\n`);
    }
  });
  const db = mysql.createPool({ uri: url, connectionLimit: 2 });
  const rpc = rpcClient(port);
  try {
    // Ready: the API answers (it opens after the migrations and the loops' start).
    for (const deadline = Date.now() + 60_000; rpc.counts.ok === 0; ) {
      if (Date.now() > deadline) throw new Error("the service did not answer within 60 s");
      await rpc.webhook(1);
      if (rpc.counts.ok === 0) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    rpc.counts.ok = 0;
    rpc.counts.failed = 0;
    const idle = readRss(pid);
    const now = time.format(new Date());
    for (let i = 0; i < users; i += 1_000) {
      const rows = Array.from({ length: Math.min(1_000, users - i) }, (_, j) => [
        i + j + 1,
        "feishu_webhook",
        1,
        `${fake.origin}/flow/api/trigger-webhook/soakkey${String(i + j + 1).padStart(6, "0")}`,
        "none",
        "",
        "flow_trigger",
        "",
        now,
        now,
      ]);
      await db.query(
        `insert into user_notification_channels (user_id, channel, enabled, webhook_url, auth_type, bearer_token,
          webhook_kind, signing_secret, created_at, updated_at) values ?`,
        [rows],
      );
    }
    const sampler = sampleRss(pid, sampleMs);
    heapOrigin = performance.now();
    let offered = 0;
    const loadStart = performance.now();
    const stopAt = loadStart + soakMs;
    for (let tick = 0; performance.now() < stopAt; tick += 1) {
      const started = performance.now();
      const stamp = time.format(new Date());
      // 500/s on average: a tick that came late inserts what the schedule is behind by (at most 100 rows).
      const due = Math.round(((started - loadStart) / 1000) * 500) + 25 - offered;
      const count = Math.max(1, Math.min(100, due));
      const rows = Array.from({ length: count }, (_, k) => eventRow(offered + k, topic, stamp));
      await db.query(
        `insert into notification_outbox_messages (biz_type, service_name, topic, message_key, payload, status,
          retry_count, max_retry, next_retry_at, created_at, updated_at) values ?`,
        [rows],
      );
      offered += count;
      for (let k = 0; k < 10; k += 1) void rpc.webhook(1 + ((tick * 10 + k) % users));
      if (tick % 100 === 0) void rpc.ops();
      const wait = 50 - (performance.now() - started);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    // The pipeline must have kept up: what was offered arrives within 30 s.
    for (const deadline = Date.now() + 30_000; delivered < offered && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    sampler.stop();
    return { idle, samples: sampler.samples, liveHeap, offered, delivered, rpc: { ...rpc.counts } };
  } finally {
    rpc.close();
    await db.end();
    service.kill("SIGTERM");
    await new Promise((resolve) => service.once("exit", resolve));
  }
});
fakeProcess.disconnect();

const { samples, idle } = result;
const mb = (n: number) => Number(n.toFixed(1));
const half = secondHalf(samples);
const slope = slopeMbPerMin(half);
const heapSamples = result.liveHeap.map((h) => ({ atMs: h.atMs, rssMb: h.mb, hwmMb: h.mb }));
const heapEnd = samples.at(-1)?.atMs ?? 0;
const heapSlope = slopeMbPerMin(heapSamples.filter((h) => h.atMs >= heapEnd / 2));
const peak = Math.max(...samples.map((s: RssSample) => s.hwmMb));
const report = {
  bench: "soak",
  minutes: mb(soakMs / 60_000),
  offeredEvents: result.offered,
  deliveredPosts: result.delivered,
  eventsPerSec: Math.round(result.offered / (soakMs / 1000)),
  rpcOk: result.rpc.ok,
  rpcFailed: result.rpc.failed,
  samples: samples.length,
  rssIdleMb: mb(idle.rssMb),
  rssStartMb: mb(samples[0]?.rssMb ?? 0),
  rssEndMb: mb(samples.at(-1)?.rssMb ?? 0),
  rssPeakMb: mb(peak),
  peakOverIdle: Number((peak / idle.rssMb).toFixed(2)),
  rssSecondHalfSlopeMbPerMin: Number(slope.toFixed(2)),
  fullGcs: heapSamples.length,
  liveHeapFirstMb: heapSamples[0]?.rssMb ?? 0,
  liveHeapLastMb: heapSamples.at(-1)?.rssMb ?? 0,
  liveHeapSecondHalfSlopeMbPerMin: Number(heapSlope.toFixed(2)),
  maxRssSlopeMbPerMin: maxRssSlope,
  maxLiveHeapSlopeMbPerMin: maxSlope,
  nodeArgs: serviceNodeArgs.join(" "),
  maxRssMb,
};
console.log(
  `rss (MB) by minute: ${samples
    .filter((_, i) => i % Math.max(1, Math.round(60_000 / sampleMs)) === 0)
    .map((s) => mb(s.rssMb))
    .join(" ")}`,
);
console.log(JSON.stringify(report));
const problems = [
  slope > maxRssSlope
    ? `RSS rises ${slope.toFixed(2)} MB/min over the second half (limit ${maxRssSlope})`
    : "",
  heapSlope > maxSlope
    ? `the live heap rises ${heapSlope.toFixed(2)} MB/min over the second half (limit ${maxSlope})`
    : "",
  peak > maxRssMb ? `peak RSS ${mb(peak)} MB over ${maxRssMb} MB` : "",
  result.delivered < result.offered
    ? `the pipeline fell behind: ${result.delivered} of ${result.offered} delivered`
    : "",
].filter(Boolean);
if (problems.length > 0) {
  console.error(`soak FAILED: ${problems.join("; ")}`);
  process.exit(1);
}
