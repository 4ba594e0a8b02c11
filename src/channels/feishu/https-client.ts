import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";

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
    postJson(url, body, headers, timeoutMs, signal) {
      return new Promise((resolve, reject) => {
        const timeout = AbortSignal.timeout(timeoutMs);
        const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
        const req = request(
          url,
          {
            method: "POST",
            agent,
            signal: combined,
            headers: { ...headers, "content-length": Buffer.byteLength(body) },
          },
          (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            let truncated = false;
            res.on("data", (chunk: Buffer) => {
              if (size >= options.maxResponseBytes) {
                truncated = true;
                return;
              }
              chunks.push(chunk.subarray(0, options.maxResponseBytes - size));
              size += chunk.length;
              if (size > options.maxResponseBytes) truncated = true;
            });
            res.on("end", () =>
              resolve({
                status: res.statusCode ?? 0,
                body: Buffer.concat(chunks).toString("utf8"),
                truncated,
              }),
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
        req.on("error", (error) => {
          const timedOut = timeout.aborted;
          reject(
            new TransportError(timedOut ? `no response within ${timeoutMs} ms` : error.message, timedOut, {
              cause: error,
            }),
          );
        });
        req.end(body);
      });
    },
    close: () => agent.destroy(),
  };
}
