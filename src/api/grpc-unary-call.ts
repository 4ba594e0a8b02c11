import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import { fromBinary, type Message, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { AppError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { abortError, RpcFailure, type RpcStatus, statusDetailsBin, toRpcStatus } from "./error-mapping.ts";
import { type GrpcEncoding, inflate } from "./grpc-inflate.ts";
import { MessageReader, type ReadMessage } from "./grpc-message-reader.ts";
import type { BoundMethod, CallContext } from "./rpc-binding.ts";

export interface UnaryCallDeps {
  readonly invoke: (bound: BoundMethod, request: Message, context: CallContext) => Promise<Message>;
  readonly maxMessageBytes: number;
  readonly logger: Logger;
}

/**
 * One unary call on the fast path, from its first byte to its one answer. One deadline timer and one close
 * listener per call: when the deadline passes or the client resets the stream, the handler's signal aborts
 * and the call is answered at once; a late result is dropped. The deadline runs from the first byte, so a
 * client that stalls mid-message is answered too. (A class, not a closure per call: it allocates less on
 * the hot path.)
 */
export class UnaryCall {
  /** Built when the handler first reads the call's signal (most reads never do), aborted on `abort`. */
  private controller: AbortController | undefined;
  private abortReason: Error | undefined;
  private readonly reader: MessageReader;
  private readonly timer: NodeJS.Timeout;
  private done = false;

  constructor(
    private readonly deps: UnaryCallDeps,
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly bound: BoundMethod,
    private readonly header: CallContext["requestHeader"],
    timeoutMs: number,
  ) {
    this.reader = new MessageReader(deps.maxMessageBytes);
    this.timer = setTimeout(() => this.abort(new TimeoutErrorReason()), timeoutMs);
    stream.on("close", () => {
      if (!this.done) this.abort(new Error("client cancelled the call"));
    });
    stream.on("data", (chunk: Buffer) => this.onData(chunk));
    stream.on("end", () => this.onEnd());
  }

  private onData(chunk: Buffer) {
    if (this.done) return;
    const tooLarge = this.reader.push(chunk);
    if (tooLarge >= 0) {
      const max = this.deps.maxMessageBytes;
      this.fail(Code.ResourceExhausted, `Received message larger than max (${tooLarge} vs ${max})`);
    } else if (this.reader.count > 1) {
      this.fail(
        Code.Unimplemented,
        `Received a second request message for unary method ${this.bound.method.name}`,
      );
    }
  }

  private onEnd() {
    if (this.done) return;
    const message = this.reader.first;
    if (!message) {
      this.fail(Code.Unimplemented, `Received no request message for unary method ${this.bound.method.name}`);
      return;
    }
    // Uncompressed (the common case) is decoded without a turn of the event loop.
    const response = message.compressed
      ? this.inflated(message).then((payload) => (this.done ? undefined : this.handle(payload)))
      : this.handle(message.bytes);
    response.then(
      (value) => {
        if (value) this.answer(encode(this.bound, value));
      },
      (error: unknown) => this.answer(this.status(error)),
    );
  }

  private handle(payload: Uint8Array): Promise<Message> {
    try {
      const request = decode(this.bound, payload);
      return this.deps.invoke(this.bound, request, this.context());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** A compressed message, inflated (PROTOCOL-HTTP2.md and grpc-js decide each status). */
  private async inflated(message: ReadMessage): Promise<Buffer> {
    const encoding = this.headers["grpc-encoding"];
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
    return inflate(name as GrpcEncoding, message.bytes, this.deps.maxMessageBytes);
  }

  private context(): CallContext {
    const call = this;
    return {
      get signal() {
        return call.signal();
      },
      requestHeader: this.header,
    };
  }

  private signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortReason) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  private abort(reason: Error) {
    this.abortReason = reason;
    this.controller?.abort(reason);
    this.answer(this.status(abortError(this.signal())));
  }

  private fail(code: Code, message: string) {
    this.answer(this.status(new RpcFailure(code, message)));
  }

  private status(error: unknown): RpcStatus {
    return toRpcStatus(error, this.bound.binding.errorStyle, this.deps.logger);
  }

  private answer(result: RpcStatus | Uint8Array) {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    if (result instanceof Uint8Array) respondMessage(this.stream, result);
    else respondStatus(this.stream, result);
  }
}

/** Encoded answers by message: the calls that share one answer (one read, one view) share its bytes. */
const encoded = new WeakMap<Message, Uint8Array>();

function encode(bound: BoundMethod, message: Message): Uint8Array {
  let bytes = encoded.get(message);
  if (!bytes) {
    bytes = toBinary(bound.method.output, message);
    encoded.set(message, bytes);
  }
  return bytes;
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

/**
 * An error is always known before the response starts (a unary response is written whole), so it goes out
 * Trailers-Only: one HEADERS frame with END_STREAM. If the client is still sending, RST_STREAM(NO_ERROR)
 * follows once that frame is written (RFC 9113 §8.1; grpc-go does the same): the rest of the body is
 * neither read nor buffered.
 */
export function respondStatus(stream: ServerHttp2Stream, status: RpcStatus) {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond({ ...RESPONSE_HEADERS, ...statusTrailers(status) }, { endStream: true });
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
    "grpc-message": percentEncodeMessage(status.message),
  };
  const details = statusDetailsBin(status);
  if (details) trailers["grpc-status-details-bin"] = details.toString("base64").replace(/=+$/, "");
  return trailers;
}

/**
 * `grpc-message` as the gRPC HTTP/2 protocol spells it: UTF-8, with each byte outside 0x20–0x7E and `%` itself
 * percent-encoded, and nothing else (so `:`, `,` and `/` stay as they are). grpc-js decodes it with
 * `decodeURI`, which leaves `%3A` or `%2C` undecoded, so `encodeURIComponent` reached its callers garbled.
 */
export function percentEncodeMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

const RESPONSE_HEADERS = {
  ":status": 200,
  "content-type": "application/grpc",
  "grpc-accept-encoding": "identity,deflate,gzip",
};
const OK_TRAILERS = { "grpc-status": "0" };

class TimeoutErrorReason extends Error {
  override readonly name = "TimeoutError";
  constructor() {
    super("the deadline was exceeded");
  }
}
