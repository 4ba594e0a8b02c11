import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { Message } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { Logger } from "../lib/logger.ts";
import { RpcFailure, toRpcStatus } from "./error-mapping.ts";
import { respondStatus, UnaryCall } from "./grpc-unary-call.ts";
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
  const { routes, logger } = deps;

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
    const header = new HeaderView(headers);
    try {
      deps.authorize(bound, header);
    } catch (error) {
      return respondStatus(stream, toRpcStatus(error, bound.binding.errorStyle, logger));
    }
    const timeoutMs = Math.min(clientTimeout ?? Number.POSITIVE_INFINITY, deps.defaultTimeoutMs);
    new UnaryCall(deps, stream, headers, bound, header, timeoutMs);
  }

  /** Answers a call that is refused before its body is read (the client is told to stop sending). */
  function refuse(stream: ServerHttp2Stream, code: Code, message: string) {
    respondStatus(stream, toRpcStatus(new RpcFailure(code, message), "v1", logger));
  }

  return { handles, serve };
}

/** `application/grpc;charset=utf-8`, `application/grpc+proto; x=y`: gRPC with the protobuf codec. */
function isGrpcProtoType(type: string | undefined): boolean {
  if (type === undefined || !type.startsWith("application/grpc")) return false;
  const end = type.indexOf(";");
  const base = (end < 0 ? type : type.slice(0, end)).trim().toLowerCase();
  return base === "application/grpc" || base === "application/grpc+proto";
}

/** A cheap view of node's header object for handlers (lower-case names; the first of repeated values). */
type RequestHeader = CallContext["requestHeader"];
class HeaderView implements RequestHeader {
  constructor(private readonly headers: IncomingHttpHeaders) {}
  get(name: string): string | null {
    const value = this.headers[name];
    return typeof value === "string" ? value : Array.isArray(value) ? (value[0] ?? null) : null;
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
