/**
 * Feishu's group-bot webhook (`POST /open-apis/bot/v2/hook/<token>`) in a process of its own, forked with IPC
 * by `fake-feishu.ts`, so that it never shares an event loop with the harness or the service.
 *
 * Each POST is tied to one notification by the number in its action URL (`…/assistant/faults-n-<n>`), which the
 * service puts in the card's button and in the text fallback. Every answer is reported to the parent as
 * `{n, token, at, outcome}` (epoch ms), in batches. Only `accepted` (HTTP 200, `code: 0`) delivers a message;
 * it is decided (and timed) when the answer is due, whether or not the client is still connected: a real
 * Feishu posts the message even if the sender died meanwhile.
 *
 * Behaviour (changed at any time by a `{type:"behaviour"}` message):
 * - `delayMs`: every answer waits this long (so that sends are in flight);
 * - `fail5xx`: this share of requests is answered HTTP 503 (half of them 500);
 * - `hang`: this share is never answered (beyond any client timeout); the socket is dropped after 60 s;
 * - `burst`: while `(now - since) % everyMs < forMs`, every request is answered `{code: 11232}`;
 * - `enforceLimit`: Feishu's limit per bot, 5 requests/s and 100/min (requests refused by it don't count),
 *   answered `{code: 11232}`.
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";

export interface Behaviour {
  readonly delayMs: number;
  readonly fail5xx: number;
  readonly hang: number;
  readonly burst: { readonly since: number; readonly everyMs: number; readonly forMs: number } | null;
  readonly enforceLimit: boolean;
}

export type Outcome = "accepted" | "5xx" | "hang" | "burst_11232" | "limit_11232" | "unknown";

export interface Answer {
  readonly n: number;
  readonly token: string;
  /** Epoch ms of the answer (of the arrival, for hangs). */
  readonly at: number;
  readonly outcome: Outcome;
}

const tls = new URL("../fixtures/tls/", import.meta.url);
const key = readFileSync(new URL("key.pem", tls));
const cert = readFileSync(new URL("cert.pem", tls));

let behaviour: Behaviour = { delayMs: 0, fail5xx: 0, hang: 0, burst: null, enforceLimit: false };
const pending: Answer[] = [];
const hung = new Set<import("node:http").ServerResponse>();
const windows = new Map<string, number[]>();
let open = 0;

const send = (message: unknown) => process.send?.(message);

function limited(token: string, now: number): boolean {
  const times = (windows.get(token) ?? []).filter((t) => now - t < 60_000);
  windows.set(token, times);
  const lastSecond = times.filter((t) => now - t < 1_000).length;
  if (lastSecond >= 5 || times.length >= 100) return true;
  times.push(now);
  return false;
}

function decide(token: string, now: number): Outcome {
  const b = behaviour;
  if (b.burst && (now - b.burst.since) % b.burst.everyMs < b.burst.forMs) return "burst_11232";
  const roll = Math.random();
  if (roll < b.hang) return "hang";
  if (roll < b.hang + b.fail5xx) return "5xx";
  if (b.enforceLimit && limited(token, now)) return "limit_11232";
  return "accepted";
}

const server: Server = createServer({ key, cert }, (req, res) => {
  const chunks: Buffer[] = [];
  open++;
  res.on("close", () => {
    open--;
  });
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    const bot = (req.url ?? "").match(/^\/open-apis\/bot\/v2\/hook\/([^/?]+)$/);
    if (req.method !== "POST" || !bot) {
      res.writeHead(404).end();
      return;
    }
    const token = bot[1] as string;
    const raw = Buffer.concat(chunks).toString("utf8");
    const n = Number(raw.match(/\/assistant\/faults-n-(\d+)/)?.[1] ?? -1);
    const arrived = Date.now();
    const answer = () => {
      const now = Date.now();
      const outcome = n < 0 ? "unknown" : decide(token, now);
      if (outcome === "hang") {
        pending.push({ n, token, at: arrived, outcome });
        hung.add(res);
        setTimeout(() => {
          hung.delete(res);
          res.destroy();
        }, 60_000).unref();
        return;
      }
      pending.push({ n, token, at: now, outcome });
      const [status, body] =
        outcome === "accepted"
          ? [200, { code: 0, msg: "success", data: {}, StatusCode: 0, StatusMessage: "success" }]
          : outcome === "5xx"
            ? [Math.random() < 0.5 ? 503 : 500, { code: -1, msg: "service unavailable" }]
            : outcome === "unknown"
              ? [200, { code: 9499, msg: "Bad Request: no notification number in the body" }]
              : [200, { code: 11232, msg: "frequency limited psm[lark.oapi.app_platform_runtime]appID[0]" }];
      if (res.destroyed) return;
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (behaviour.delayMs > 0) setTimeout(answer, behaviour.delayMs);
    else answer();
  });
});
server.keepAliveTimeout = 30_000;

process.on("message", (message: { type: string; behaviour?: Partial<Behaviour> }) => {
  if (message.type === "behaviour" && message.behaviour) {
    behaviour = { ...behaviour, ...message.behaviour };
  } else if (message.type === "open") {
    send({ type: "open", open });
  }
});
process.on("disconnect", () => {
  for (const res of hung) res.destroy();
  server.closeAllConnections();
  process.exit(0);
});

setInterval(() => {
  if (pending.length > 0) send({ type: "answers", items: pending.splice(0, pending.length) });
}, 20);

server.listen(0, "127.0.0.1", () => {
  send({ type: "ready", port: (server.address() as AddressInfo).port });
});
