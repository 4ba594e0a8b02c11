import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import { fromBinary, type Message, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { AppError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { abortError, RpcFailure, type RpcStatus, statusDetailsBin, toRpcStatus } from "./error-mapping.ts";
import { type GrpcEncoding, inflate } from "./grpc-inflate.ts";
import { MessageReader, type ReadMessage } from "./grpc-message-reader.ts";
import type { BoundMethod, CallContext } from "./rpc-binding.ts";

/**
 * Unary gRPC over HTTP/2, served directly: the hot path (the gateway's calls) skips connect-node's per-call
 * machinery, which measured 6.5× slower than grpc-js here. Every `application/grpc` stream that connect-node
 * does not serve (its streaming methods) comes here, known method or not, so each gets a gRPC status.
 *
 * Checked side by side with @grpc/grpc-js (test/integration/grpc-conformance.test.ts): the same status for
 * every malformed, truncated, oversized or compressed request; errors known before the response starts are
 * sent Trailers-Only; a length prefix over the limit is answered as soon as it arrives, not after the body;
 * inflation runs off the event loop and stops at the limit. The caller (api-server) has already put an
 * `error` listener on the stream, so a peer's reset is a cancellation here, never a crash.
 */
export function createGrpcFastPath(deps: {
  readonly routes: ReadonlyMap<string, BoundMethod>;
  /** Paths of gRPC methods served elsewhere (connect-node's streaming methods): not taken here. */
  readonly servedElsewhere: ReadonlySet<string>;
  /** Throws when the call may not be made (checked before the request is even read). */
  readonly authorize: (bound: BoundMethod, header: CallContext["requestHeader"]) => void;
  readonly invoke: (bound: BoundMethod, request: Message, context: CallContext) => Promise<Message>;
  readonly defaultTimeoutMs: number;
  readonly maxMessageBytes: number;
  readonly logger: Logger;
}) {
  const { routes, logger, maxMessageBytes } = deps;

  /** gRPC with the protobuf codec (`application/grpc`, `+proto`, with or without parameters). */
  function handles(headers: IncomingHttpHeaders): boolean {
    const type = headers["content-type"];
    if (type !== "application/grpc" && type !== "application/grpc+proto" && !isGrpcProtoType(type))
      return false;
    return !deps.servedElsewhere.has(headers[":path"] ?? "");
  }

  function serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders) {
    const path = headers[":path"] ?? "";
    const method = headers[":method"];
    if (method !== "POST") return refuse(stream, Code.Unimplemented, `gRPC calls are POST, not ${method}`);
    const bound = routes.get(path);
    if (!bound) return refuse(stream, Code.Unimplemented, `The server does not implement the method ${path}`);
    const timeoutHeader = headers["grpc-timeout"];
    const clientTimeout = timeoutHeader === undefined ? undefined : parseTimeout(timeoutHeader);
    if (clientTimeout === undefined && timeoutHeader !== undefined) {
      return refuse(stream, Code.Internal, `Invalid grpc-timeout value "${String(timeoutHeader)}"`);
    }
    const header = headerView(headers);
    try {
      deps.authorize(bound, header);
    } catch (error) {
      return respondStatus(stream, status(error, bound));
    }
    runCall(stream, headers, bound, header, Math.min(clientTimeout ?? Infinity, deps.defaultTimeoutMs));
  }

  function runCall(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    bound: BoundMethod,
    header: CallContext["requestHeader"],
    timeoutMs: number,
  ) {
    // One timer and one close listener per call: when the deadline passes or the client resets the stream,
    // the handler's signal aborts and the call is answered at once; a late result is dropped. The deadline
    // runs from the first byte, so a client that stalls mid-message is answered too.
    const controller = new AbortController();
    let done = false;
    const answer = (result: RpcStatus | RpcFailure | Uint8Array) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (result instanceof Uint8Array) respondMessage(stream, result);
      else respondStatus(stream, result instanceof RpcFailure ? status(result, bound) : result);
    };
    const abort = (reason: Error) => {
      controller.abort(reason);
      answer(status(abortError(controller.signal), bound));
    };
    const timer = setTimeout(() => abort(new TimeoutErrorReason()), timeoutMs);
    stream.once("close", () => {
      if (!done) abort(new Error("client cancelled the call"));
    });

    const reader = new MessageReader(maxMessageBytes);
    stream.on("data", (chunk: Buffer) => {
      if (done) return;
      const tooLarge = reader.push(chunk);
      if (tooLarge >= 0) {
        answer(
          failure(
            Code.ResourceExhausted,
            `Received message larger than max (${tooLarge} vs ${maxMessageBytes})`,
          ),
        );
      } else if (reader.count > 1) {
        answer(
          failure(
            Code.Unimplemented,
            `Received a second request message for unary method ${bound.method.name}`,
          ),
        );
      }
    });
    stream.on("end", () => {
      if (done) return;
      const message = reader.first;
      if (!message) {
        answer(
          failure(Code.Unimplemented, `Received no request message for unary method ${bound.method.name}`),
        );
        return;
      }
      // Uncompressed (the common case) is decoded without a turn of the event loop.
      const call = message.compressed
        ? inflated(message, headers["grpc-encoding"]).then((payload) => (done ? undefined : handle(payload)))
        : handle(message.bytes);
      call.then(
        (response) => {
          if (response) answer(toBinary(bound.method.output, response));
        },
        (error: unknown) => answer(status(error, bound)),
      );
    });

    function handle(payload: Uint8Array): Promise<Message> {
      try {
        return deps.invoke(bound, decode(bound, payload), {
          signal: controller.signal,
          requestHeader: header,
        });
      } catch (error) {
        return Promise.reject(error);
      }
    }
  }

  /** A compressed message, inflated (PROTOCOL-HTTP2.md and grpc-js decide each status). */
  async function inflated(message: ReadMessage, encoding: string | string[] | undefined): Promise<Buffer> {
    const name = typeof encoding === "string" ? encoding : "identity";
    if (name === "identity") {
      // A compressed flag without a grpc-encoding is INTERNAL.
      throw new RpcFailure(Code.Internal, "Compressed flag set without a grpc-encoding");
    }
    if (name !== "gzip" && name !== "deflate") {
      throw new RpcFailure(
        Code.Unimplemented,
        `Received message compressed with unsupported encoding "${name}"`,
      );
    }
    return inflate(name as GrpcEncoding, message.bytes, maxMessageBytes);
  }

  /** Answers a call that is refused before its body is read (the client is told to stop sending). */
  function refuse(stream: ServerHttp2Stream, code: Code, message: string) {
    respondStatus(stream, toRpcStatus(new RpcFailure(code, message), "v1", logger));
  }

  function status(error: unknown, bound: BoundMethod): RpcStatus {
    return toRpcStatus(error, bound.binding.errorStyle, logger);
  }

  function decode(bound: BoundMethod, payload: Uint8Array): Message {
    try {
      return fromBinary(bound.method.input, payload);
    } catch (error) {
      throw new AppError("invalid_argument", `request is not a valid ${bound.method.input.typeName}`, {
        cause: error,
      });
    }
  }

  return { handles, serve };
}

function failure(code: Code, message: string): RpcFailure {
  return new RpcFailure(code, message);
}

/**
 * An error is always known before the response starts (a unary response is written whole), so it goes out
 * Trailers-Only: one HEADERS frame with END_STREAM. If the client is still sending, RST_STREAM(NO_ERROR)
 * follows once that frame is written (RFC 9113 §8.1; grpc-go does the same): the rest of the body is
 * neither read nor buffered.
 */
function respondStatus(stream: ServerHttp2Stream, status: RpcStatus) {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond(
    {
      ":status": 200,
      "content-type": "application/grpc",
      "grpc-accept-encoding": ACCEPT_ENCODING,
      ...statusTrailers(status),
    },
    { endStream: true },
  );
  if (!stream.readableEnded) stream.close(constants.NGHTTP2_NO_ERROR);
}

function respondMessage(stream: ServerHttp2Stream, body: Uint8Array) {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.once("wantTrailers", () => stream.sendTrailers(OK_TRAILERS));
  stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
  const frame = Buffer.allocUnsafe(5 + body.length);
  frame[0] = 0;
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, 5);
  stream.end(frame);
}

function statusTrailers(status: RpcStatus): Record<string, string> {
  const trailers: Record<string, string> = {
    "grpc-status": String(status.code),
    "grpc-message": encodeURIComponent(status.message),
  };
  const details = statusDetailsBin(status);
  if (details) trailers["grpc-status-details-bin"] = details.toString("base64").replace(/=+$/, "");
  return trailers;
}

const ACCEPT_ENCODING = "identity,deflate,gzip";
const RESPONSE_HEADERS = {
  ":status": 200,
  "content-type": "application/grpc",
  "grpc-accept-encoding": ACCEPT_ENCODING,
};
const OK_TRAILERS = { "grpc-status": "0" };

/** `application/grpc;charset=utf-8`, `application/grpc+proto; x=y`: gRPC with the protobuf codec. */
function isGrpcProtoType(type: string | undefined): boolean {
  if (type === undefined || !type.startsWith("application/grpc")) return false;
  const end = type.indexOf(";");
  const base = (end < 0 ? type : type.slice(0, end)).trim().toLowerCase();
  return base === "application/grpc" || base === "application/grpc+proto";
}

/** A cheap view of node's header object for handlers (lower-case names; the first of repeated values). */
function headerView(headers: IncomingHttpHeaders): CallContext["requestHeader"] {
  return {
    get: (name: string) => {
      const value = headers[name];
      return typeof value === "string" ? value : Array.isArray(value) ? (value[0] ?? null) : null;
    },
  };
}

class TimeoutErrorReason extends Error {
  override readonly name = "TimeoutError";
  constructor() {
    super("the deadline was exceeded");
  }
}

const units: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000001 };

/** `grpc-timeout: 1S`, `250m`, …: milliseconds, or undefined when absent or malformed. */
export function parseTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== "string") return undefined;
  const match = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!match) return undefined;
  return Math.max(0, Number(match[1]) * (units[match[2] as string] ?? 0));
}
