import { constants, type Http2Session } from "node:http2";
import type { Socket } from "node:net";
import type { Logger } from "../lib/logger.ts";

/** Connection limits, all on by default (see ApiServerOptions for each one's meaning). */
export interface ConnectionLimits {
  readonly handshakeTimeoutMs: number;
  readonly maxConnectionAgeMs: number;
  readonly maxConnectionAgeGraceMs: number;
}

const kHandshake = Symbol("handshake deadline");
const kSession = Symbol("http2 session");
type Tracked = Socket & { [kHandshake]?: NodeJS.Timeout; [kSession]?: Http2Session };

/**
 * Every connection the API accepted, from its first byte to its close, whoever owns it at the moment: the
 * protocol sniffer, the HTTP/1.1 server or an HTTP/2 session. It enforces
 * - the handshake timeout: a connection must have chosen its protocol, and an HTTP/2 client must have sent
 *   its SETTINGS, within `handshakeTimeoutMs` of being accepted (grpc-go: 120 s), or it is destroyed;
 * - the max connection age (optional): an HTTP/2 session past it (± 10 % jitter, as grpc-js) gets GOAWAY, so
 *   its client reconnects, possibly to another replica; it is destroyed after the grace time if its streams
 *   have not finished;
 * and closes them all within a budget at shutdown.
 *
 * long-function: its operations share the tracked sets (sockets, sessions, TLS transports); each is short.
 */
export function createConnectionTracker(limits: ConnectionLimits, logger: Logger) {
  const sockets = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  /** TCP connections under TLS: their TLS socket is tracked once the handshake is done; these only to end. */
  const tlsTransports = new Set<Socket>();
  let onEmpty: (() => void) | undefined;
  /** Connections owned by a server (HTTP/1.1 or HTTP/2), no longer being sniffed. */
  const owned = new WeakSet<Socket>();
  const handedOver = (socket: Socket) => owned.add(socket);

  /** A TCP connection of the TLS listener: nothing to wait for, but destroyed with the rest at shutdown. */
  function acceptedTlsTransport(socket: Socket) {
    tlsTransports.add(socket);
    socket.once("close", () => tlsTransports.delete(socket));
  }

  /** A newly accepted connection: tracked until it closes; the handshake clock starts now. */
  function accepted(socket: Socket) {
    sockets.add(socket);
    const timer = setTimeout(() => {
      logger.debug("api connection closed: no handshake in time", { timeoutMs: limits.handshakeTimeoutMs });
      // Over TLS, an HTTP/2 session has taken the socket's stream over: destroying the socket alone leaves the
      // connection open, so the session goes first.
      (socket as Tracked)[kSession]?.destroy();
      socket.destroy();
    }, limits.handshakeTimeoutMs);
    timer.unref();
    (socket as Tracked)[kHandshake] = timer;
    socket.once("close", () => {
      clearTimeout(timer);
      sockets.delete(socket);
      if (sockets.size === 0) onEmpty?.();
    });
  }

  /** The connection is past its handshake (HTTP/1.1 chosen: the server's header timeout takes over). */
  function handshakeDone(socket: Socket) {
    clearTimeout((socket as Tracked)[kHandshake]);
  }

  /**
   * A new HTTP/2 session: its handshake ends with the client's SETTINGS. `session.socket` is node's proxy of
   * the connection, through which the handshake timer set in `accepted` is read.
   */
  function sessionStarted(session: Http2Session) {
    sessions.add(session);
    const socket = session.socket as Tracked | undefined;
    // Set through node's socket proxy, which forwards to the real socket.
    if (socket) socket[kSession] = session;
    const handshake = socket?.[kHandshake];
    if (handshake) session.once("remoteSettings", () => clearTimeout(handshake));
    const stopAgeing = limits.maxConnectionAgeMs > 0 ? ageOut(session, limits, logger) : () => undefined;
    session.once("close", () => {
      stopAgeing();
      sessions.delete(session);
    });
  }

  /**
   * Closes every connection within `budgetMs`: connections still choosing their protocol at once (nothing is
   * in flight on them), HTTP/2 sessions with GOAWAY (their streams may finish), HTTP/1.1 through `closeIdle`
   * (called again by the caller as requests finish). Whatever is left when the budget runs out is destroyed;
   * this never waits beyond the budget.
   */
  async function closeAll(budgetMs: number, closeIdle: () => void, destroyRest: () => void) {
    for (const socket of sockets) if (!owned.has(socket)) socket.destroy();
    for (const session of sessions) goAway(session);
    closeIdle();
    if (sockets.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, budgetMs);
        onEmpty = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    onEmpty = undefined;
    for (const session of sessions) session.destroy();
    destroyRest();
    for (const socket of sockets) socket.destroy();
    for (const socket of tlsTransports) socket.destroy();
  }

  return { accepted, acceptedTlsTransport, handshakeDone, handedOver, sessionStarted, closeAll };
}

/**
 * The max connection age: past it (± 10 % jitter, as grpc-js), GOAWAY; the session is destroyed after the
 * grace time if its streams have not finished. Returns what cancels both timers.
 */
function ageOut(session: Http2Session, limits: ConnectionLimits, logger: Logger): () => void {
  let grace: NodeJS.Timeout | undefined;
  const jitter = (Math.random() * 0.2 - 0.1) * limits.maxConnectionAgeMs;
  const age = setTimeout(() => {
    logger.debug("api connection reached its max age: GOAWAY");
    goAway(session);
    grace = setTimeout(() => session.destroy(), limits.maxConnectionAgeGraceMs);
    grace.unref();
  }, limits.maxConnectionAgeMs + jitter);
  age.unref();
  return () => {
    clearTimeout(age);
    clearTimeout(grace);
  };
}

/** Two-step GOAWAY as grpc-js and grpc-go: "no new streams" first, then the real last stream id on close. */
function goAway(session: Http2Session) {
  if (session.closed || session.destroyed) return;
  try {
    session.goaway(constants.NGHTTP2_NO_ERROR, 2 ** 31 - 1);
  } catch {
    session.destroy();
    return;
  }
  session.close();
}

export type ConnectionTracker = ReturnType<typeof createConnectionTracker>;
