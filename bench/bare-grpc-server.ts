/**
 * The gRPC bench's baseline in a process of its own, so it runs with the same node flags as the service:
 * a bare @grpc/grpc-js server answering GetFeishuWebhook with a constant. Prints `listening <port>`.
 *   node <flags> --import tsx bench/bare-grpc-server.ts
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { ChannelResponseSchema } from "../src/gen/smartflow/notification/notification_pb.ts";
import { startBareGrpcServer } from "./grpc-support.ts";

const answer = create(ChannelResponseSchema, { channel: "feishu_webhook", authType: "none" });
const server = await startBareGrpcServer(Buffer.from(toBinary(ChannelResponseSchema, answer)));
console.log(`listening ${server.port}`);
process.once("SIGTERM", () => server.stop());
