import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { GetFeishuWebhookRequestSchema } from "../src/gen/smartflow/notification/notification_pb.ts";

export const GET_PATH = "/smartflow.notification.Notification/GetFeishuWebhook";

/** A file holding one gRPC frame of GetFeishuWebhook for user 42: h2load's request body (`-d`). */
export async function getRequestFrameFile(prefix: string): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const message = toBinary(
    GetFeishuWebhookRequestSchema,
    create(GetFeishuWebhookRequestSchema, { userId: 42n }),
  );
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  const file = join(dir, "get-42.bin");
  await writeFile(file, frame);
  return { dir, file };
}

/** The baseline: a bare @grpc/grpc-js server answering GetFeishuWebhook with the constant `answer`. */
export async function startBareGrpcServer(answer: Buffer): Promise<{ port: number; stop: () => void }> {
  const server = new grpc.Server();
  const passthrough = (v: Buffer) => v;
  server.addService(
    {
      get: {
        path: GET_PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: passthrough,
        requestDeserialize: passthrough,
        responseSerialize: passthrough,
        responseDeserialize: passthrough,
      },
    },
    { get: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => callback(null, answer) },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, p) =>
      error ? reject(error) : resolve(p),
    ),
  );
  return { port, stop: () => server.forceShutdown() };
}
