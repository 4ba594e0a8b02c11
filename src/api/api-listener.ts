import { readFileSync } from "node:fs";
import type { Server as Http1Server } from "node:http";
import type { Http2Server } from "node:http2";
import { createServer as createNetServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import type { Logger } from "../lib/logger.ts";
import type { ConnectionTracker } from "./connection-tracker.ts";

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * The one port's listener. Plain text: each connection is routed by its first bytes, the HTTP/2 preface to
 * the HTTP/2 server, anything else to the HTTP/1.1 server. TLS: ALPN decides ("h2" or not). Every
 * connection is tracked (handshake timeout, shutdown) from the moment it is accepted.
 */
export function createListener(deps: {
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly clientCaFile?: string };
  readonly handshakeTimeoutMs: number;
  readonly connections: ConnectionTracker;
  readonly http1: Http1Server;
  readonly http2: Http2Server;
  readonly logger: Logger;
}): Server {
  const { tls, connections, http1, http2, logger } = deps;
  let listener: Server;
  if (tls) {
    // The TLS handshake has its own timeout; the HTTP/2 handshake (client SETTINGS) starts after it.
    listener = createTlsServer(
      {
        cert: readFileSync(tls.certFile),
        key: readFileSync(tls.keyFile),
        ALPNProtocols: ["h2", "http/1.1"],
        handshakeTimeout: deps.handshakeTimeoutMs,
        ...(tls.clientCaFile
          ? { ca: readFileSync(tls.clientCaFile), requestCert: true, rejectUnauthorized: true }
          : {}),
      },
      (socket) => {
        connections.accepted(socket);
        connections.handedOver(socket);
        if (socket.alpnProtocol !== "h2") connections.handshakeDone(socket);
        (socket.alpnProtocol === "h2" ? http2 : http1).emit("connection", socket);
      },
    );
    // Connections still in their TLS handshake end at its timeout, or at the end of close()'s budget.
    listener.on("connection", (socket: Socket) => connections.acceptedTlsTransport(socket));
  } else {
    listener = createNetServer((socket: Socket) => {
      connections.accepted(socket);
      socket.on("error", (error) => logger.debug("api connection error", { error }));
      sniff(socket, (isH2) => {
        connections.handedOver(socket);
        // HTTP/1.1: node's header timeout takes over. HTTP/2: the handshake ends with the client's SETTINGS.
        if (!isH2) connections.handshakeDone(socket);
        // Leave the socket paused: each server reads the bytes put back itself (node's HTTP/2 session
        // feeds buffered data to its native parser on the next tick; resuming would drop them).
        (isH2 ? http2 : http1).emit("connection", socket);
        if (!isH2) socket.resume();
      });
    });
  }
  // A failed or timed-out TLS handshake: with a listener here, node leaves the socket open; close it.
  listener.on("tlsClientError", (error: Error, socket: Socket) => {
    logger.debug("tls handshake failed", { error: error.message });
    socket.destroy();
  });
  return listener;
}

/**
 * Reads until the first bytes tell HTTP/2's preface from an HTTP/1.1 request line, then puts them back and
 * calls `route` with the socket paused.
 */
function sniff(socket: Socket, route: (isH2: boolean) => void) {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, H2_PREFACE.length);
    const isH2 = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
    if (isH2 && n < H2_PREFACE.length) return;
    socket.off("data", onData);
    socket.pause();
    socket.unshift(seen);
    route(isH2);
  };
  socket.on("data", onData);
}
