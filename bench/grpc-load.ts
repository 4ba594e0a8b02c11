/**
 * A closed-loop gRPC load generator (its own process): `channels` × `streams` concurrent unary calls of
 * smartflow.notification.Notification/GetFeishuWebhook until `calls` are done, for user 42 or, with `users`,
 * for users 1 … `users` in turn. Prints {rps, p50Ms, p99Ms}.
 *   argv: target calls channels streams [users]
 */

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  ChannelResponseSchema,
  GetFeishuWebhookRequestSchema,
} from "../src/gen/smartflow/notification/notification_pb.ts";
import { percentile } from "./support.ts";

const [target = "127.0.0.1:9082", callsArg = "20000", channelsArg = "4", streamsArg = "16", usersArg] =
  process.argv.slice(2);
const calls = Number(callsArg);
const method = "/smartflow.notification.Notification/GetFeishuWebhook";
const requests = (usersArg ? Array.from({ length: Number(usersArg) }, (_, i) => BigInt(i + 1)) : [42n]).map(
  (userId) => toBinary(GetFeishuWebhookRequestSchema, create(GetFeishuWebhookRequestSchema, { userId })),
);
const clients = Array.from(
  { length: Number(channelsArg) },
  (_, i) =>
    new grpc.Client(target, grpc.credentials.createInsecure(), {
      "grpc.channel_id": i,
    } as grpc.ChannelOptions),
);
let next = 0;
const call = (client: grpc.Client, request = requests[next++ % requests.length] as Uint8Array) =>
  new Promise<void>((resolve, reject) =>
    client.makeUnaryRequest(
      method,
      (value: Uint8Array) => Buffer.from(value),
      (buffer: Buffer) => fromBinary(ChannelResponseSchema, buffer),
      request,
      (error) => (error ? reject(error) : resolve()),
    ),
  );

// Warm-up, then measure.
await Promise.all(clients.map((client) => call(client)));
const latencies: number[] = [];
let issued = 0;
const started = performance.now();
await Promise.all(
  clients.flatMap((client) =>
    Array.from({ length: Number(streamsArg) }, async () => {
      while (issued < calls) {
        issued++;
        const t0 = performance.now();
        await call(client);
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
  }),
);
for (const client of clients) client.close();
