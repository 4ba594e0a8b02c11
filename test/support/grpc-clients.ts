import {
  create,
  type DescMessage,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { BadRequestSchema, ErrorInfoSchema } from "../../src/gen/google/rpc/error_details_pb.ts";
import { StatusSchema } from "../../src/gen/google/rpc/status_pb.ts";

const originalProto = new URL("../fixtures/original/notification.proto", import.meta.url).pathname;

export interface CallOptions {
  readonly deadlineMs?: number;
  readonly token?: string;
  /** More request metadata (e.g. a W3C `traceparent`). */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** Metadata and call options for a grpc-js call. */
function callArgs(options: CallOptions): [grpc.Metadata, grpc.CallOptions] {
  const metadata = new grpc.Metadata();
  if (options.token) metadata.set("authorization", `Bearer ${options.token}`);
  for (const [name, value] of Object.entries(options.metadata ?? {})) metadata.set(name, value);
  return [metadata, options.deadlineMs ? { deadline: Date.now() + options.deadlineMs } : {}];
}

/**
 * The gateway's view: a @grpc/grpc-js client built with proto-loader from SmartFlow's original proto file
 * (test/fixtures/original), which knows none of this service's added fields.
 */
export function legacyClient(address: string, credentials = grpc.credentials.createInsecure()) {
  const definition = protoLoader.loadSync(originalProto, { keepCase: true, longs: String, defaults: true });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    smartflow: { notification: { Notification: grpc.ServiceClientConstructor } };
  };
  const client = new loaded.smartflow.notification.Notification(address, credentials);
  return {
    call<T = Record<string, unknown>>(
      method: string,
      request: object,
      options: CallOptions = {},
    ): Promise<T> {
      const [metadata, callOptions] = callArgs(options);
      return new Promise((resolve, reject) => {
        const fn = client[method] as unknown as (
          req: object,
          md: grpc.Metadata,
          opts: grpc.CallOptions,
          cb: (error: grpc.ServiceError | null, value: T) => void,
        ) => void;
        fn.call(client, request, metadata, callOptions, (error, value) =>
          error ? reject(error) : resolve(value),
        );
      });
    },
    close: () => client.close(),
  };
}

/** A grpc-js client for any method, with protobuf-es (de)serialisers (the ops and health services). */
export function rpcClient(address: string, credentials = grpc.credentials.createInsecure()) {
  const client = new grpc.Client(address, credentials);
  return {
    unary<I extends DescMessage, O extends DescMessage>(
      path: string,
      input: I,
      output: O,
      request: MessageInitShape<I>,
      options: CallOptions = {},
    ): Promise<MessageShape<O>> {
      const [metadata, callOptions] = callArgs(options);
      return new Promise((resolve, reject) =>
        client.makeUnaryRequest(
          path,
          (value: MessageShape<I>) => Buffer.from(toBinary(input, value)),
          (buffer: Buffer) => fromBinary(output, buffer),
          create(input, request),
          metadata,
          callOptions,
          (error, value) => (error || !value ? reject(error) : resolve(value)),
        ),
      );
    },
    /** Sends raw bytes as the request (malformed input). */
    raw(path: string, bytes: Buffer): Promise<Buffer> {
      return new Promise((resolve, reject) =>
        client.makeUnaryRequest(
          path,
          (value: Buffer) => value,
          (buffer: Buffer) => buffer,
          bytes,
          (error, value) => (error || !value ? reject(error) : resolve(value)),
        ),
      );
    },
    serverStream<I extends DescMessage, O extends DescMessage>(
      path: string,
      input: I,
      output: O,
      request: MessageInitShape<I>,
    ): grpc.ClientReadableStream<MessageShape<O>> {
      return client.makeServerStreamRequest(
        path,
        (value: MessageShape<I>) => Buffer.from(toBinary(input, value)),
        (buffer: Buffer) => fromBinary(output, buffer),
        create(input, request),
      );
    },
    close: () => client.close(),
  };
}

/** The `google.rpc` details of a failed call (from `grpc-status-details-bin`). */
export function errorDetails(error: unknown) {
  const bin = (error as grpc.ServiceError).metadata?.get("grpc-status-details-bin")[0];
  if (!bin) return { errorInfo: undefined, badRequest: undefined };
  const status = fromBinary(StatusSchema, Buffer.isBuffer(bin) ? bin : Buffer.from(String(bin), "base64"));
  const unpack = <D extends DescMessage>(desc: D) =>
    status.details.map((any) => anyUnpack(any, desc)).find((value) => value !== undefined);
  return { errorInfo: unpack(ErrorInfoSchema), badRequest: unpack(BadRequestSchema) };
}

export { grpc };
