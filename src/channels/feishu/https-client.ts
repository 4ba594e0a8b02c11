import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { inSpan, SpanKind } from "../../lib/trace-context.ts";

export interface HttpsResponse {
  readonly status: number;
  readonly body: string;
  readonly truncated: boolean;
}

export interface HttpsClient {
  postJson(
    url: string,
    body: string,
    headers: Record<string, string>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<HttpsResponse>;
  close(): void;
}

/** Transport failures, tagged so providers can tell a timeout from other network errors. */
export class TransportError extends Error {
  override readonly name = "TransportError";
  constructor(
    message: string,
    readonly timedOut: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * POSTs JSON over HTTPS with a keep-alive pool. Redirects are not followed (a redirect could leave the host
 * allow-list); response bodies are read up to `maxResponseBytes`.
 */
export function createHttpsClient(options: {
  readonly maxSockets: number;
  readonly maxResponseBytes: number;
  /** An extra CA certificate (PEM file) to trust, e.g. a corporate proxy's or a test server's. */
  readonly caFile?: string;
}): HttpsClient {
  const agent = new Agent({
    keepAlive: true,
    maxSockets: options.maxSockets,
    ...(options.caFile ? { ca: readFileSync(options.caFile) } : {}),
  });
  return {
    async postJson(url, body, headers, timeoutMs, signal) {
      const timeout = AbortSignal.timeout(timeoutMs);
      const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
      const attempt: Attempt = { url, body, headers, agent, signal: combined, timeout, timeoutMs };
      // The provider request's client span, child of the notification's trace. Only the host is recorded:
      // the webhook's path and query are its secret.
      return inSpan("POST", { kind: SpanKind.CLIENT, attributes: requestAttributes(url) }, async (span) => {
        const response = await postRetryingStale(attempt, options.maxResponseBytes, combined);
        span.setAttribute("http.response.status_code", response.status);
        return response;
      });
    },
    close: () => agent.destroy(),
  };
}

/**
 * Keep-alive's race: the server closed an idle connection just as this request reused it. Node documents
 * retrying exactly this case (`req.reusedSocket` and a reset before any answer): the server never read the
 * request (it closed the connection first), so sending it again on another connection does not post it
 * twice. Each pooled connection may be stale in turn.
 */
async function postRetryingStale(attempt: Attempt, maxResponseBytes: number, signal: AbortSignal) {
  for (let stale = 0; ; stale++) {
    try {
      return await postOnce(attempt, maxResponseBytes);
    } catch (error) {
      if (!(error instanceof StaleSocketError)) throw error;
      if (signal.aborted || stale >= MAX_STALE_RETRIES) throw error.cause;
    }
  }
}

function requestAttributes(url: string) {
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  return {
    "http.request.method": "POST",
    "peer.service": "feishu",
    ...(parsed ? { "server.address": parsed.hostname, "url.scheme": parsed.protocol.replace(":", "") } : {}),
  };
}

/** Requests re-sent because their pooled connection turned out closed (each never reached the server). */
const MAX_STALE_RETRIES = 3;

interface Attempt {
  readonly url: string;
  readonly body: string;
  readonly headers: Record<string, string>;
  readonly agent: Agent;
  readonly signal: AbortSignal;
  readonly timeout: AbortSignal;
  readonly timeoutMs: number;
}

/** A request that failed on a reused keep-alive connection before any answer; its cause is the failure. */
class StaleSocketError extends Error {
  override readonly name = "StaleSocketError";
}

function postOnce(attempt: Attempt, maxResponseBytes: number): Promise<HttpsResponse> {
  const { timeout, timeoutMs } = attempt;
  return new Promise((resolve, reject) => {
    const req = request(
      attempt.url,
      {
        method: "POST",
        agent: attempt.agent,
        signal: attempt.signal,
        headers: { ...attempt.headers, "content-length": Buffer.byteLength(attempt.body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        let truncated = false;
        res.on("data", (chunk: Buffer) => {
          if (size >= maxResponseBytes) {
            truncated = true;
            return;
          }
          chunks.push(chunk.subarray(0, maxResponseBytes - size));
          size += chunk.length;
          if (size > maxResponseBytes) truncated = true;
        });
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), truncated }),
        );
        res.on("error", (error) =>
          reject(
            new TransportError(`reading the response failed: ${error.message}`, timeout.aborted, {
              cause: error,
            }),
          ),
        );
      },
    );
    req.on("error", (error: NodeJS.ErrnoException) => {
      const timedOut = timeout.aborted;
      const failure = new TransportError(
        timedOut ? `no response within ${timeoutMs} ms` : error.message,
        timedOut,
        {
          cause: error,
        },
      );
      const stale = req.reusedSocket && (error.code === "ECONNRESET" || error.code === "EPIPE");
      reject(
        stale && !attempt.signal.aborted
          ? new StaleSocketError(failure.message, { cause: failure })
          : failure,
      );
    });
    req.end(attempt.body);
  });
}
