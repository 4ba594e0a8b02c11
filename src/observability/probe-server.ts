import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { describeError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";

export interface Probes {
  /** Prometheus text exposition and its content type. */
  metrics(): Promise<{ readonly contentType: string; readonly text: string }>;
  /** The process runs its loops (none failed for good). */
  live(): boolean;
  /** gRPC health says SERVING (not draining, the database answers) and the API is open. */
  ready(): boolean;
}

/**
 * The operators' plain HTTP listener, apart from the API's port: `GET /metrics`, `/livez` and `/readyz`
 * (200 or 503, with a one-word body). Anything else is 404; only GET and HEAD are answered.
 */
export function createProbeServer(deps: {
  readonly host: string;
  readonly port: number;
  readonly probes: Probes;
  readonly logger: Logger;
}) {
  const { probes, logger } = deps;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    const plain = (status: number, body: string) =>
      res
        .writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" })
        .end(body);
    if (path === "/livez") plain(probes.live() ? 200 : 503, probes.live() ? "ok\n" : "failed\n");
    else if (path === "/readyz")
      plain(probes.ready() ? 200 : 503, probes.ready() ? "ready\n" : "not ready\n");
    else if (path === "/metrics") {
      probes.metrics().then(
        ({ contentType, text }) => res.writeHead(200, { "content-type": contentType }).end(text),
        (error: unknown) => {
          logger.error("metrics: scrape failed", { error: describeError(error) });
          plain(500, "scrape failed\n");
        },
      );
    } else plain(404, "not found\n");
  });
  // A scraper's keep-alive connection must not hold the process open at shutdown.
  server.keepAliveTimeout = 5_000;
  return {
    async listen(): Promise<number> {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(deps.port, deps.host, () => {
          server.off("error", reject);
          resolve();
        });
      });
      const port = (server.address() as AddressInfo).port;
      logger.info("metrics listening", { address: `${deps.host}:${port}` });
      return port;
    },
    async close(): Promise<void> {
      if (!server.listening) return;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

export type ProbeServer = ReturnType<typeof createProbeServer>;
