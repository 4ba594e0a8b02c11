import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { after, before, test } from "node:test";
import { createHttpsClient } from "../../src/channels/feishu/https-client.ts";
import { caFile } from "../support/fake-feishu.ts";

const key = readFileSync(new URL("../fixtures/tls/key.pem", import.meta.url));
const cert = readFileSync(caFile);

/**
 * A webhook server that closes a kept-alive connection the moment the next request arrives on it, without
 * answering: what a client sees when the server dropped an idle connection just as the client reused it
 * (Node's keep-alive race, "socket hang up" on a reused socket). A fresh connection is answered.
 */
let server: Server;
let port = 0;
const handled: { socket: number; reused: boolean }[] = [];
before(async () => {
  const served = new WeakMap<Socket, number>();
  let sockets = 0;
  server = createServer({ key, cert }, (req, res) => {
    const socket = req.socket;
    const count = served.get(socket);
    if (count !== undefined) {
      handled.push({ socket: count, reused: true });
      socket.destroy();
      return;
    }
    sockets++;
    served.set(socket, sockets);
    handled.push({ socket: sockets, reused: false });
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end('{"code":0}'));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

test("a POST on a kept-alive connection the server has just dropped is sent again on a new one, once", async () => {
  const client = createHttpsClient({ maxSockets: 1, maxResponseBytes: 1024, caFile });
  try {
    const url = `https://127.0.0.1:${port}/open-apis/bot/v2/hook/abcdefgh`;
    const first = await client.postJson(url, "{}", { "content-type": "application/json" }, 2_000);
    assert.equal(first.status, 200);
    // The second request goes out on the kept-alive socket; the server drops it without an answer.
    const second = await client.postJson(url, "{}", { "content-type": "application/json" }, 2_000);
    assert.equal(second.status, 200, "sent again on a fresh connection");
    assert.deepEqual(handled.slice(-2), [
      { socket: 1, reused: true },
      { socket: 2, reused: false },
    ]);
  } finally {
    client.close();
  }
});

test("a connection that fails on its first use is not retried: the failure is the provider's answer", async () => {
  const client = createHttpsClient({ maxSockets: 1, maxResponseBytes: 1024, caFile });
  const refused = createServer({ key, cert }, (req) => req.socket.destroy());
  await new Promise<void>((resolve) => refused.listen(0, "127.0.0.1", resolve));
  const url = `https://127.0.0.1:${(refused.address() as AddressInfo).port}/x`;
  let requests = 0;
  refused.on("request", () => requests++);
  try {
    await assert.rejects(client.postJson(url, "{}", {}, 2_000), /socket hang up/);
    assert.equal(requests, 1, "a fresh connection's failure may mean the POST arrived: never sent twice");
  } finally {
    client.close();
    await new Promise<void>((resolve) => refused.close(() => resolve()));
  }
});
