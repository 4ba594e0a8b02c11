import { setMaxListeners } from "node:events";
import { createServer as createHttp1Server, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttp2Server, type Http2Session } from "node:http2";
import type { Message } from "@bufbuild/protobuf";
import type { Logger } from "../lib/logger.ts";
import { createListener } from "./api-listener.ts";
import {
  type ApiServerOptions,
  type ResolvedApiServerOptions,
  resolveApiServerOptions,
} from "./api-server-options.ts";
import { createConnectHandler, servedServices } from "./connect-routes.ts";
import { createConnectionTracker } from "./connection-tracker.ts";
import { grpcCodeName } from "./error-mapping.ts";
import { createGrpcFastPath } from "./grpc-fast-path.ts";
import { type HealthState, healthBinding } from "./health.ts";
import { createHttp2StreamRouter } from "./http2-stream-router.ts";
import {
  type BoundMethod,
  type CallContext,
  createTokenCheck,
  type ServiceBinding,
  unaryRoutes,
} from "./rpc-binding.ts";
import { tracedInvoke } from "./rpc-tracing.ts";

export { API_SERVER_DEFAULTS, type ApiServerOptions } from "./api-server-options.ts";

/**
 * One port for every protocol. A plain-text connection is routed by its first bytes: the HTTP/2 preface
 * (gRPC from the gateway, grpcurl, `buf curl`) goes to an HTTP/2 server, anything else to an HTTP/1.1 server
 * (Connect and gRPC-Web from browsers and curl). With TLS, ALPN decides (`api-listener.ts`). On HTTP/2 each
 * stream is routed on its own (`http2-stream-router.ts`): `application/grpc` calls take the fast path (known
 * method or not); the streaming methods (health Watch, reflection), Connect and gRPC-Web over HTTP/2 go to
 * connect-node (`connect-routes.ts`). The same handlers serve both paths. Every connection is tracked and
 * bounded (`connection-tracker.ts`).
 */
export function createApiServer(deps: {
  readonly options: ApiServerOptions;
  readonly bindings: readonly ServiceBinding[];
  readonly health: HealthState;
  readonly logger: Logger;
  /** Told of every unary call's end, on either path: `/pkg.Service/Method`, gRPC code name, seconds. */
  readonly onCall?: CallObserver;
}) {
  const { logger } = deps;
  const options = resolveApiServerOptions(deps.options);
  // connect-node links every call's signal to this one: one listener per call in flight, by design.
  const shutdown = new AbortController();
  setMaxListeners(0, shutdown.signal);
  const { fastPath, connectHandler } = createCallPaths(deps, options, shutdown.signal);
  const connections = createConnectionTracker(options, logger);
  const servers = createProtocolServers(options, fastPath, connectHandler, connections, logger);
  const listener = createListener({
    ...(options.tls ? { tls: options.tls } : {}),
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    connections,
    http1: servers.http1,
    http2: servers.http2,
    logger,
  });

  return {
    async listen(): Promise<number> {
      await new Promise<void>((resolve, reject) => {
        listener.once("error", reject);
        listener.listen(options.port, options.host, () => resolve());
      });
      const address = listener.address();
      const port = typeof address === "object" && address ? address.port : options.port;
      logger.info("api listening", {
        address: `${options.host}:${port}`,
        tls: Boolean(options.tls),
        mtls: Boolean(options.tls?.clientCaFile),
        tokenRequired: Boolean(options.token),
      });
      return port;
    },
    /**
     * Stops accepting connections, lets calls in flight finish within `budgetMs` (streams such as health
     * Watch are told to end; HTTP/2 clients get GOAWAY; connections still choosing a protocol are closed at
     * once), then destroys every connection left. Resolves within the budget, whatever the peers do.
     */
    async close(budgetMs: number): Promise<void> {
      servers.markClosing();
      listener.close();
      const started = Date.now();
      const drained = connections.closeAll(
        budgetMs,
        () => servers.http1.closeIdleConnections(),
        () => servers.http1.closeAllConnections(),
      );
      // Let what handlers have just written (health Watch's NOT_SERVING) go out, then end long streams.
      await new Promise((resolve) => setTimeout(resolve, Math.min(20, budgetMs)));
      shutdown.abort();
      await drained;
      logger.debug("api closed", { ms: Date.now() - started });
    },
  };
}

/** The two ways a call is served (the gRPC fast path, connect-node), over the same handlers and token check. */
function createCallPaths(
  deps: {
    readonly bindings: readonly ServiceBinding[];
    readonly health: HealthState;
    readonly logger: Logger;
    readonly onCall?: CallObserver;
  },
  options: ResolvedApiServerOptions,
  shutdownSignal: AbortSignal,
) {
  const { bindings, health, logger } = deps;
  const observe = observedCall(deps.onCall);
  const allBindings = [...bindings, healthBinding(health)];
  const checkToken = createTokenCheck(options.token);
  const routes = unaryRoutes(allBindings);
  const served = servedServices(bindings);
  // gRPC methods that connect-node serves (streaming: health Watch, reflection); every other gRPC path,
  // known or not, is the fast path's (an unknown one answers UNIMPLEMENTED there, as grpc-js).
  const servedElsewhere = new Set(
    served
      .flatMap((service) => service.methods.map((method) => `/${service.typeName}/${method.name}`))
      .filter((path) => !routes.has(path)),
  );
  const fastPath = createGrpcFastPath({
    routes,
    servedElsewhere,
    authorize: (bound, header) => observe(bound, () => checkToken(bound.binding, header), true),
    invoke: (bound, request, context) =>
      observe(bound, () => tracedInvoke(bound, context, () => bound.handler(request, context))),
    defaultTimeoutMs: options.rpcTimeoutMs,
    maxMessageBytes: options.maxMessageBytes,
    logger,
  });
  const connectHandler = createConnectHandler({
    bindings: allBindings,
    routes,
    served,
    health,
    invoke(bound: BoundMethod, request: Message, context: CallContext) {
      return observe(bound, () =>
        tracedInvoke(bound, context, async () => {
          checkToken(bound.binding, context.requestHeader);
          return bound.handler(request, context);
        }),
      );
    },
    rpcTimeoutMs: options.rpcTimeoutMs,
    maxMessageBytes: options.maxMessageBytes,
    shutdownSignal,
    logger,
  });
  return { fastPath, connectHandler };
}

export type CallObserver = (method: string, code: string, seconds: number) => void;

/**
 * The one place both paths report their unary calls: `step` runs the call (or, with `onlyFailures`, the fast
 * path's token check, reported only when it refuses the call).
 */
function observedCall(onCall: CallObserver | undefined) {
  return <T>(bound: BoundMethod, step: () => T, onlyFailures = false): T => {
    if (!onCall) return step();
    const method = `/${bound.binding.service.typeName}/${bound.method.name}`;
    const started = performance.now();
    const report = (error?: unknown) =>
      onCall(method, grpcCodeName(error), (performance.now() - started) / 1_000);
    let result: T;
    try {
      result = step();
    } catch (error) {
      report(error);
      throw error;
    }
    if (onlyFailures) return result;
    if (result instanceof Promise) result.then(() => report(), report);
    else report();
    return result;
  };
}

/**
 * The HTTP/2 server (streams routed one by one) and the HTTP/1.1 server (everything to connect-node). Neither
 * listens: the listener hands each connection to one of them. Once `markClosing` is called, each HTTP/1.1 request
 * ends its connection, and a connection whose request finishes is closed at once instead of idling.
 */
function createProtocolServers(
  options: ResolvedApiServerOptions,
  fastPath: ReturnType<typeof createGrpcFastPath>,
  connectHandler: ReturnType<typeof createConnectHandler>,
  connections: ReturnType<typeof createConnectionTracker>,
  logger: Logger,
) {
  const http2 = createHttp2Server({
    maxSessionMemory: options.sessionMemoryMb,
    settings: { maxConcurrentStreams: options.maxConcurrentStreams },
  });
  http2.on("stream", createHttp2StreamRouter(fastPath, connectHandler));
  http2.on("session", (session: Http2Session) => {
    session.on("error", (error) => logger.debug("api session error", { error }));
    connections.sessionStarted(session);
  });
  let closing = false;
  const dispatch = (req: IncomingMessage, res: ServerResponse) => {
    if (closing) res.setHeader("connection", "close");
    res.once("close", () => {
      if (closing) http1.closeIdleConnections();
    });
    return connectHandler(req, res);
  };
  const http1 = createHttp1Server(
    {
      keepAliveTimeout: 65_000,
      headersTimeout: options.http1HeadersTimeoutMs,
      requestTimeout: options.http1RequestTimeoutMs,
      // How often node looks for requests past those timeouts (its default, 30 s, is for 60 s timeouts).
      connectionsCheckingInterval: Math.max(
        10,
        Math.min(30_000, Math.floor(options.http1HeadersTimeoutMs / 4)),
      ),
    },
    dispatch,
  );
  // Node starts an HTTP server's connection tracking (the header and request timeouts, closeIdleConnections,
  // closeAllConnections) on its 'listening' event. This server never listens itself (connections are
  // handed to it), so that is started here.
  http1.emit("listening");
  return {
    http1,
    http2,
    markClosing() {
      closing = true;
    },
  };
}

export type ApiServer = ReturnType<typeof createApiServer>;
