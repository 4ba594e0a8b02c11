/**
 * One HTTP/2 request with hand-built headers and body (node:http2 client), summarised as the outcome a gRPC
 * client would see: `grpc <code>` (with `trailers-only` when the status came in the response headers),
 * `http <status>` for a non-200 answer without grpc-status, or `reset <code>` when the stream was reset.
 */
import { type ClientHttp2Session, type ClientHttp2Stream, connect, constants } from "node:http2";

export interface H2Outcome {
  /** `grpc 3 trailers-only`, `grpc 0`, `http 415`, `reset 7`, … */
  readonly summary: string;
  readonly httpStatus?: number;
  readonly grpcStatus?: number;
  readonly grpcMessage?: string;
  readonly trailersOnly?: boolean;
  readonly headers?: Record<string, unknown>;
  readonly trailers?: Record<string, unknown>;
  readonly body: Buffer;
}

export interface H2Request {
  readonly path: string;
  readonly method?: string;
  readonly headers?: Record<string, string>;
  /** Chunks written in order; the stream is ended after them unless `end` is false. */
  readonly body?: readonly Buffer[];
  readonly end?: boolean;
  /** Sends RST_STREAM with this code after the body (instead of ending the stream). */
  readonly resetWith?: number;
  /** Resolves after this many ms without an answer (the stream stays open): `pending`. */
  readonly pendingAfterMs?: number;
}

export function h2Session(port: number): ClientHttp2Session {
  const session = connect(`http://127.0.0.1:${port}`);
  session.on("error", () => undefined);
  return session;
}

export function h2Request(session: ClientHttp2Session, request: H2Request): Promise<H2Outcome> {
  return new Promise((resolve) => {
    // A header given as "" is left out (e.g. no content-type).
    const requestHeaders = Object.fromEntries(
      Object.entries({
        ":method": request.method ?? "POST",
        ":path": request.path,
        "content-type": "application/grpc",
        te: "trailers",
        ...request.headers,
      }).filter(([, value]) => value !== ""),
    );
    const stream: ClientHttp2Stream = session.request(requestHeaders, { endStream: false });
    stream.on("error", () => undefined);
    const chunks: Buffer[] = [];
    let response: Record<string, unknown> | undefined;
    let trailers: Record<string, unknown> | undefined;
    let settled = false;
    const settle = (outcome: H2Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(pendingTimer);
      resolve(outcome);
    };
    const pendingTimer = request.pendingAfterMs
      ? setTimeout(() => {
          settle({ summary: "pending", body: Buffer.concat(chunks) });
          stream.close(constants.NGHTTP2_CANCEL);
        }, request.pendingAfterMs)
      : undefined;
    const finish = () => {
      const body = Buffer.concat(chunks);
      if (!response) {
        settle({ summary: `reset ${stream.rstCode ?? "?"}`, body });
        return;
      }
      const httpStatus = Number(response[":status"]);
      const inHeaders = response["grpc-status"] !== undefined;
      const source = inHeaders ? response : trailers;
      if (source?.["grpc-status"] === undefined) {
        const summary = httpStatus === 200 ? `reset ${stream.rstCode ?? "?"}` : `http ${httpStatus}`;
        settle({ summary, httpStatus, headers: response, body });
        return;
      }
      const grpcStatus = Number(source["grpc-status"]);
      settle({
        summary: `grpc ${grpcStatus}${inHeaders ? " trailers-only" : ""}`,
        httpStatus,
        grpcStatus,
        grpcMessage: decodeURIComponent(String(source["grpc-message"] ?? "")),
        trailersOnly: inHeaders,
        headers: response,
        ...(trailers ? { trailers } : {}),
        body,
      });
    };
    // A status can come while the request is still being sent (an early answer): settle on it then.
    stream.on("response", (h) => {
      response = { ...h };
      if (h["grpc-status"] !== undefined) finish();
    });
    stream.on("trailers", (t) => {
      trailers = { ...t };
      finish();
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("close", finish);
    const write = async () => {
      for (const chunk of request.body ?? []) {
        await new Promise<void>((done) => stream.write(chunk, () => done()));
      }
      if (request.resetWith !== undefined) stream.close(request.resetWith);
      else if (request.end !== false) stream.end();
    };
    void write();
  });
}
