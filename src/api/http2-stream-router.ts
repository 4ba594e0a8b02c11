import type { IncomingMessage, ServerResponse } from "node:http";
import {
  Http2ServerRequest,
  Http2ServerResponse,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import type { createGrpcFastPath } from "./grpc-fast-path.ts";

/**
 * HTTP/2 streams are taken from the session's `stream` event, before node's compatibility layer: the fast
 * path works on the raw stream; any other stream gets the compatibility objects that node itself would have
 * made (`Http2ServerRequest`/`Http2ServerResponse`, as in its `onServerStream`) and goes to connect-node.
 * Without a `request` listener on an HTTP/2 server, node makes no compatibility objects.
 */
export function createHttp2StreamRouter(
  fastPath: ReturnType<typeof createGrpcFastPath>,
  connectHandler: (
    req: IncomingMessage | Http2ServerRequest,
    res: ServerResponse | Http2ServerResponse,
  ) => void,
) {
  const Request = Http2ServerRequest as unknown as new (
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    options: undefined,
    rawHeaders: string[],
  ) => Http2ServerRequest;
  const Response = Http2ServerResponse as unknown as new (stream: ServerHttp2Stream) => Http2ServerResponse;
  return (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    // First of all (style habit 16): a stream without an `error` listener turns a peer's RST_STREAM into an
    // uncaught exception. Every error also closes the stream, and 'close' is what the paths act on.
    stream.on("error", ignoreStreamError);
    if (fastPath.handles(headers)) fastPath.serve(stream, headers);
    else connectHandler(new Request(stream, headers, undefined, rawHeaders), new Response(stream));
  };
}

function ignoreStreamError() {
  // Nothing to do: the stream is closed with it, and its 'close' listener answers or cancels the call.
}
