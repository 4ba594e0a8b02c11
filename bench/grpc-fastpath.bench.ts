/**
 * The gRPC fast path alone: this service's API server with a handler answering a constant (no database),
 * against a bare @grpc/grpc-js server answering the same constant, in one process, driven by h2load (4
 * connections × 16 streams). Rounds alternate the order; besides req/s it measures this process's CPU time
 * per call while each server is under load (far less noisy than req/s on a shared machine). A third server,
 * the same fast path with its calls counted into the metrics adapter (`onCall` → event → prom-client counter
 * and histogram), measures what the metrics cost per call against the plain fast path.
 * With `sdk` as the third argument the tracing SDK is started first (every call then makes a server span, each
 * exported at its end to an exporter that drops it), to weigh tracing against the same baseline.
 *   node --expose-gc --import tsx bench/grpc-fastpath.bench.ts [rounds] [calls] [sdk]   (needs h2load: nghttp2-client)
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { createApiServer } from "../src/api/api-server.ts";
import { createHealthState } from "../src/api/health.ts";
import type { ServiceBinding } from "../src/api/rpc-binding.ts";
import { startTracingWithExporter } from "../src/app/tracing-sdk.ts";
import type { AppEvents } from "../src/app.ts";
import { ChannelResponseSchema, Notification } from "../src/gen/smartflow/notification/notification_pb.ts";
import { createEventHub } from "../src/lib/event-hub.ts";
import { silentLogger } from "../src/lib/logger.ts";
import { createMetrics } from "../src/observability/metrics.ts";
import { GET_PATH, getRequestFrameFile, startBareGrpcServer } from "./grpc-support.ts";
import { median } from "./support.ts";

const run = promisify(execFile);
const rounds = Number(process.argv[2] ?? 9);
const calls = process.argv[3] ?? "20000";
const tracing = process.argv[4] === "sdk";
if (tracing) {
  startTracingWithExporter({ export: (_spans, done) => done({ code: 0 }), shutdown: async () => undefined });
}
const path = GET_PATH;
const answer = create(ChannelResponseSchema, { channel: "feishu_webhook", authType: "none" });

const binding: ServiceBinding = {
  service: Notification,
  errorStyle: "legacy",
  requiresToken: false,
  handlers: { getFeishuWebhook: async () => answer },
};
const api = createApiServer({
  options: { host: "127.0.0.1", port: 0, rpcTimeoutMs: 6_000, maxMessageBytes: 4 * 1024 * 1024 },
  bindings: [binding],
  health: createHealthState([]),
  logger: silentLogger,
});
const fastPath = await api.listen();
const events = createEventHub<AppEvents>();
const metrics = createMetrics({
  events,
  sources: {
    outbox: async () => ({ byStatus: {}, oldestDueAgeMs: 0 }),
    records: async () => ({}),
    deliveryBacklog: () => 0,
  },
  logger: silentLogger,
  pollTimeoutMs: 1_000,
});
const observedApi = createApiServer({
  options: { host: "127.0.0.1", port: 0, rpcTimeoutMs: 6_000, maxMessageBytes: 4 * 1024 * 1024 },
  bindings: [binding],
  health: createHealthState([]),
  logger: silentLogger,
  onCall: (method, code, seconds) => events.emit("api:call", { method, code, seconds }),
});
const observed = await observedApi.listen();

const bare = await startBareGrpcServer(Buffer.from(toBinary(ChannelResponseSchema, answer)));
const barePort = bare.port;
const { file: bodyFile } = await getRequestFrameFile("sfn-fastpath-bench-");

const results = {
  bare: { rps: [] as number[], cpuUs: [] as number[] },
  fastPath: { rps: [] as number[], cpuUs: [] as number[] },
  observed: { rps: [] as number[], cpuUs: [] as number[] },
};
for (let round = 1; round <= rounds; round++) {
  const order: [keyof typeof results, number][] = [
    ["bare", barePort],
    ["fastPath", fastPath],
    ["observed", observed],
  ];
  if (round % 2 === 0) order.reverse();
  for (const [name, port] of order) {
    (globalThis as { gc?: () => void }).gc?.();
    const cpu = process.cpuUsage();
    const { stdout } = await run("h2load", [
      ...["-n", calls, "-c", "4", "-m", "16", "-d", bodyFile],
      ...["-H", "content-type: application/grpc", "-H", "te: trailers"],
      `http://127.0.0.1:${port}${path}`,
    ]);
    const used = process.cpuUsage(cpu);
    results[name].rps.push(Number(/finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(stdout)?.[1] ?? 0));
    results[name].cpuUs.push((used.user + used.system) / Number(calls));
  }
  console.log(
    `round ${round}: bare ${results.bare.rps.at(-1)} req/s, fast path ${results.fastPath.rps.at(-1)} req/s, with metrics ${results.observed.rps.at(-1)} req/s`,
  );
}
bare.stop();
await api.close(1_000);
await observedApi.close(1_000);
const counted = /rpc_requests_total\{[^}]*\} (\d+)/.exec((await metrics.scrape()).text)?.[1];
const b = median(results.bare.rps);
const f = median(results.fastPath.rps);
console.log(
  JSON.stringify({
    bench: "grpc-fastpath",
    tracing: tracing ? "sdk" : "off",
    calls: Number(calls),
    rounds,
    bareGrpcJsRps: b,
    fastPathRps: f,
    ratio: Number((f / b).toFixed(2)),
    bareCpuUsPerCall: Number(median(results.bare.cpuUs).toFixed(1)),
    fastPathCpuUsPerCall: Number(median(results.fastPath.cpuUs).toFixed(1)),
    withMetricsRps: median(results.observed.rps),
    withMetricsCpuUsPerCall: Number(median(results.observed.cpuUs).toFixed(1)),
    withMetricsOverFastPathCpu: Number(
      (median(results.observed.cpuUs) / median(results.fastPath.cpuUs)).toFixed(2),
    ),
    callsCounted: Number(counted ?? 0),
  }),
);
