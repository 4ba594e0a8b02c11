import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";

export const caFile = new URL("../fixtures/tls/cert.pem", import.meta.url).pathname;
const key = readFileSync(new URL("../fixtures/tls/key.pem", import.meta.url));
const cert = readFileSync(caFile);

export interface ReceivedRequest {
  readonly kind: "flow" | "bot";
  readonly key: string;
  /** The request's path and query, as sent. */
  readonly path: string;
  readonly headers: IncomingMessage["headers"];
  readonly body: Record<string, unknown>;
  readonly raw: string;
  /** `performance.now()` when the request body had arrived. */
  readonly at: number;
}

export interface RateWindow {
  readonly limit: number;
  readonly windowMs: number;
}

/** Feishu's documented limits of a custom bot: 5 requests per second and 100 per minute. */
export const feishuBotLimits: readonly RateWindow[] = [
  { limit: 5, windowMs: 1_000 },
  { limit: 100, windowMs: 60_000 },
];

/** One scripted answer: an HTTP status and body, a delay, or no answer at all. */
export interface Reply {
  readonly status?: number;
  readonly body?: unknown;
  readonly delayMs?: number;
  /** Never answer (the client's timeout, or a killed sender). */
  readonly hang?: boolean;
  /** Runs before answering (e.g. to look at the database while the request is in flight). */
  readonly before?: () => Promise<void>;
}

/**
 * A local stand-in for Feishu, speaking both protocols over HTTPS:
 * - Flow triggers: `POST /flow/api/trigger-webhook/<key>`, answering 200 with an empty body;
 * - group custom bots: `POST /open-apis/bot/v2/hook/<token>`, answering `{"code":0,…}`, checking the
 *   signature (documented algorithm, implemented here independently) when a secret is registered, and
 *   answering code 19021 when it does not match, 9499 for a body over 20 KB, and code 11232 ("frequency
 *   limited") past Feishu's limits of a bot: 5 requests in any second, 100 in any minute (sliding windows over
 *   the arrival times of the requests it accepted; `setRateLimits(null)` turns this off).
 * Replies can be scripted per key, in order; unscripted requests get the default answer.
 */
export async function startFakeFeishu() {
  const requests: ReceivedRequest[] = [];
  const scripts = new Map<string, Reply[]>();
  const secrets = new Map<string, string>();
  const hanging = new Set<ServerResponse>();
  const listeners = new Set<() => void>();
  let defaultDelayMs = 0;
  let rateLimits: readonly RateWindow[] | null = feishuBotLimits;
  const accepted = new Map<string, number[]>();
  const limited: ReceivedRequest[] = [];

  /** Whether a bot request arriving at `at` is over a limit; if not, it counts. */
  const overLimit = (botKey: string, at: number) => {
    if (!rateLimits) return false;
    const times = accepted.get(botKey) ?? [];
    if (rateLimits.some((w) => times.filter((t) => t > at - w.windowMs).length >= w.limit)) return true;
    times.push(at);
    accepted.set(botKey, times);
    return false;
  };

  const answer = async (res: ServerResponse, reply: Reply, fallback: () => [number, unknown]) => {
    if (reply.before) await reply.before();
    if (reply.hang) {
      hanging.add(res);
      return;
    }
    const delay = reply.delayMs ?? defaultDelayMs;
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    const [status, body] = reply.status === undefined ? fallback() : [reply.status, reply.body];
    res.writeHead(status, { "content-type": "application/json" });
    res.end(body === undefined ? "" : typeof body === "string" ? body : JSON.stringify(body));
  };

  const server: Server = createServer({ key, cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const path = req.url ?? "";
      // A key, then (as Go-era stored URLs have) an optional trailing slash and query.
      const flow = path.match(/^\/flow\/api\/trigger-webhook\/([^/?]+)\/?(?:\?.*)?$/);
      const bot = path.match(/^\/open-apis\/bot\/v2\/hook\/([^/?]+)\/?(?:\?.*)?$/);
      if (req.method !== "POST" || (!flow && !bot)) {
        res.writeHead(404).end();
        return;
      }
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        body = {};
      }
      const kind = flow ? "flow" : "bot";
      const keyOf = (flow?.[1] ?? bot?.[1] ?? "") as string;
      const received: ReceivedRequest = {
        kind,
        key: keyOf,
        path,
        headers: req.headers,
        body,
        raw,
        at: performance.now(),
      };
      requests.push(received);
      const reply = scripts.get(keyOf)?.shift() ?? {};
      const overRate = kind === "bot" && reply.status === undefined && overLimit(keyOf, received.at);
      if (overRate) limited.push(received);
      for (const listener of listeners) listener();
      void answer(res, reply, () => {
        if (kind === "flow") return [200, ""];
        if (overRate) return [200, { code: 11232, msg: "frequency limited" }];
        if (Buffer.byteLength(raw) > 20 * 1024) return [200, { code: 9499, msg: "Bad Request", data: {} }];
        const secret = secrets.get(keyOf);
        if (secret !== undefined) {
          const timestamp = String(body.timestamp ?? "");
          const expected = createHmac("sha256", `${timestamp}\n${secret}`).update("").digest("base64");
          const fresh = Math.abs(Date.now() / 1000 - Number(timestamp)) <= 3600;
          if (!fresh || body.sign !== expected) {
            return [
              200,
              { code: 19021, msg: "sign match fail or timestamp is not within one hour from current time" },
            ];
          }
        }
        return [200, { code: 0, msg: "success", data: {}, StatusCode: 0, StatusMessage: "success" }];
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `https://127.0.0.1:${port}`;

  return {
    origin,
    host: `127.0.0.1:${port}`,
    requests,
    flowUrl: (k: string) => `${origin}/flow/api/trigger-webhook/${k}`,
    botUrl: (k: string) => `${origin}/open-apis/bot/v2/hook/${k}`,
    script(k: string, ...replies: Reply[]) {
      scripts.set(k, [...(scripts.get(k) ?? []), ...replies]);
    },
    requireSignature(k: string, secret: string) {
      secrets.set(k, secret);
    },
    setDefaultDelay(ms: number) {
      defaultDelayMs = ms;
    },
    /** Feishu's limits per bot (the default), other ones, or none (`null`). */
    setRateLimits(limits: readonly RateWindow[] | null) {
      rateLimits = limits;
    },
    /** Bot requests answered 11232 because they were over a limit. */
    rateLimited: limited,
    requestsFor: (k: string) => requests.filter((r) => r.key === k),
    /** Resolves once `count` requests for key `k` arrived. */
    waitForRequests(k: string, count: number, timeoutMs = 30_000): Promise<ReceivedRequest[]> {
      const ready = () => requests.filter((r) => r.key === k).length >= count;
      if (ready()) return Promise.resolve(requests.filter((r) => r.key === k));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(
            new Error(
              `fake feishu: ${requests.filter((r) => r.key === k).length}/${count} requests for ${k}`,
            ),
          );
        }, timeoutMs);
        const check = () => {
          if (!ready()) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve(requests.filter((r) => r.key === k));
        };
        listeners.add(check);
      });
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type FakeFeishu = Awaited<ReturnType<typeof startFakeFeishu>>;
