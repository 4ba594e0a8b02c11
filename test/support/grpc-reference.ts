/**
 * The reference implementation for conformance tests: a bare @grpc/grpc-js `Server` serving SmartFlow's
 * original proto (loaded with @grpc/proto-loader, so requests are really decoded) with constant answers.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const originalProto = new URL("../fixtures/original/notification.proto", import.meta.url).pathname;

export async function startReferenceServer(options: grpc.ServerOptions = {}) {
  const definition = protoLoader.loadSync(originalProto, { keepCase: true, longs: String, defaults: true });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    smartflow: { notification: { Notification: grpc.ServiceClientConstructor } };
  };
  const server = new grpc.Server(options);
  const constant = (answer: object) => (_call: unknown, callback: grpc.sendUnaryData<object>) =>
    callback(null, answer);
  server.addService(loaded.smartflow.notification.Notification.service, {
    GetFeishuWebhook: constant({ channel: "feishu_webhook", auth_type: "none" }),
    SaveFeishuWebhook: constant({ channel: "feishu_webhook", auth_type: "none" }),
    DeleteFeishuWebhook: constant({}),
    TestFeishuWebhook: constant({ status: "skipped" }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, p) =>
      error ? reject(error) : resolve(p),
    ),
  );
  return { port, close: () => server.forceShutdown() };
}
