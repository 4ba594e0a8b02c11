/**
 * A closed-loop gRPC load generator (its own process) for RequestFeishuNotification: `channels` × `streams`
 * concurrent @grpc/grpc-js callers, each request with a distinct event id (`prefix-i`), until `calls` are
 * done. Errors are counted, not thrown. Prints {rps, p50Ms, p99Ms, errors, firstError}.
 *   argv: target calls channels streams prefix
 */

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  RequestFeishuNotificationRequestSchema,
  RequestFeishuNotificationResponseSchema,
} from "../src/gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import { percentile } from "./support.ts";

const [target = "127.0.0.1:9082", callsArg = "10000", channelsArg = "4", streamsArg = "16", prefix = "evt"] =
  process.argv.slice(2);
const calls = Number(callsArg);
const method = "/smartflow.notification.v1.NotificationOpsService/RequestFeishuNotification";
const requestOf = (i: number) =>
  toBinary(
    RequestFeishuNotificationRequestSchema,
    create(RequestFeishuNotificationRequestSchema, {
      eventId: `${prefix}-${i}`,
      userId: BigInt(1 + (i % 4_000)),
      triggerId: `ast_${i}`,
      previewId: `asp_bench_${i}`,
      triggerType: "unfinished_feedback",
      targetType: "task",
      targetId: BigInt(i),
      dedupeKey: `${prefix}:${i}`,
      targetUrl: `/assistant/conv_${i}`,
      summaryText: "明天上午的两个任务时间冲突，建议把复习挪到下午三点。",
    }),
  );
const clients = Array.from(
  { length: Number(channelsArg) },
  (_, i) =>
    new grpc.Client(target, grpc.credentials.createInsecure(), {
      "grpc.channel_id": i,
    } as grpc.ChannelOptions),
);
const call = (client: grpc.Client, i: number) =>
  new Promise<void>((resolve, reject) =>
    client.makeUnaryRequest(
      method,
      (value: Uint8Array) => Buffer.from(value),
      (buffer: Buffer) => fromBinary(RequestFeishuNotificationResponseSchema, buffer),
      requestOf(i),
      (error) => (error ? reject(error) : resolve()),
    ),
  );

// Warm-up (event ids past the measured range), then measure.
await Promise.all(clients.map((client, i) => call(client, calls + i)));
const latencies: number[] = [];
let issued = 0;
let errors = 0;
let firstError = "";
const started = performance.now();
await Promise.all(
  clients.flatMap((client) =>
    Array.from({ length: Number(streamsArg) }, async () => {
      while (issued < calls) {
        const i = issued++;
        const t0 = performance.now();
        try {
          await call(client, i);
        } catch (error) {
          errors++;
          firstError ||= String((error as Error).message ?? error);
        }
        latencies.push(performance.now() - t0);
      }
    }),
  ),
);
const seconds = (performance.now() - started) / 1000;
const at = (p: number) => percentile(latencies, p * 100);
console.log(
  JSON.stringify({
    rps: Math.round(calls / seconds),
    p50Ms: Number(at(0.5).toFixed(2)),
    p99Ms: Number(at(0.99).toFixed(2)),
    errors,
    ...(firstError ? { firstError } : {}),
  }),
);
for (const client of clients) client.close();
