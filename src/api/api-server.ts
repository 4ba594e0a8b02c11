import { setMaxListeners } from "node:events";
import { createServer as createHttp1Server, type IncomingMessage, type ServerResponse } from "node:http";
import {
  createServer as createHttp2Server,
  Http2ServerRequest,
  Http2ServerResponse,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import { createRegistry, type Message } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Health } from "../gen/grpc/health/v1/health_pb.ts";
import * as reflectionV1 from "../gen/grpc/reflection/v1/reflection_pb.ts";
import * as reflectionV1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.ts";
import type { Logger } from "../lib/logger.ts";
import { createListener } from "./api-listener.ts";
import { createConnectionTracker } from "./connection-tracker.ts";
import { raceSignal, toConnectError, toRpcStatus } from "./error-mapping.ts";
import { createGrpcFastPath } from "./grpc-fast-path.ts";
import { type HealthState, healthBinding, healthWatch } from "./health.ts";
import { reflectionServices } from "./reflection.ts";
import {
  type BoundMethod,
  type CallContext,
  createTokenCheck,
  type ServiceBinding,
  unaryRoutes,
} from "./rpc-binding.ts";

export interface ApiServerOptions {
  readonly host: string;
  readonly port: number;
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly clientCaFile?: string };
  readonly token?: string;
  /** The server's deadline for a call; a client's shorter deadline wins. */
  readonly rpcTimeoutMs: number;
  readonly maxMessageBytes: number;
  /**
   * A new connection must choose its protocol (and an HTTP/2 client send its SETTINGS; with TLS, finish the
   * TLS handshake) within this, or it is closed. Default 120 s, as grpc-go.
   */
  readonly handshakeTimeoutMs?: number;
  /** HTTP/1.1: the whole request head must arrive within this (node's `headersTimeout`). Default 60 s. */
  readonly http1HeadersTimeoutMs?: number;
  /** HTTP/1.1: the whole request must arrive within this (node's `requestTimeout`). Default 300 s. */
  readonly http1RequestTimeoutMs?: number;
  /** HTTP/2: SETTINGS_MAX_CONCURRENT_STREAMS per connection; streams past it are refused. Default 100. */
  readonly maxConcurrentStreams?: number;
  /**
   * HTTP/2: memory one session may hold in node's HTTP/2 layer (frames and header blocks not yet taken by
   * the application, and unsent output), in MB; past it, new streams are refused (ENHANCE_YOUR_CALM).
   * Default 32 (node's default is 10).
   */
  readonly sessionMemoryMb?: number;
  /** HTTP/2: a connection older than this (± 10 %) gets GOAWAY so its client reconnects. 0 (default): never. */
  readonly maxConnectionAgeMs?: number;
  /** After that GOAWAY, streams still open get this long before the connection is destroyed. Default 30 s. */
  readonly maxConnectionAgeGraceMs?: number;
}

/** The defaults of the optional settings above. */
export const API_SERVER_DEFAULTS = {
  handshakeTimeoutMs: 120_000,
  http1HeadersTimeoutMs: 60_000,
  http1RequestTimeoutMs: 300_000,
  maxConcurrentStreams: 100,
  sessionMemoryMb: 32,
  maxConnectionAgeMs: 0,
  maxConnectionAgeGraceMs: 30_000,
} as const;

/**
 * One port for every protocol. A plain-text connection is routed by its first bytes: the HTTP/2 preface
 * (gRPC from the gateway, grpcurl, `buf curl`) goes to an HTTP/2 server, anything else to an HTTP/1.1 server
 * (Connect and gRPC-Web from browsers and curl). With TLS, ALPN decides (`api-listener.ts`). On HTTP/2 each
 * stream is routed on its own: `application/grpc` calls take the fast path (known method or not); the
 * streaming methods (health Watch, reflection), Connect and gRPC-Web over HTTP/2 go to connect-node. The same
 * handlers serve both paths. Every connection is tracked and bounded (`connection-tracker.ts`).
 */
export function createApiServer(deps: {
  readonly options: ApiServerOptions;
  readonly bindings: readonly ServiceBinding[];
  readonly health: HealthState;
  readonly logger: Logger;
}) {
  const { bindings, health, logger } = deps;
  const options = { ...API_SERVER_DEFAULTS, ...definedOnly(deps.options) };
  const allBindings = [...bindings, healthBinding(health)];
  const checkToken = createTokenCheck(options.token);
  // connect-node links every call's signal to this one: one listener per call in flight, by design.
  const shutdown = new AbortController();
  setMaxListeners(0, shutdown.signal);

  async function invoke(bound: BoundMethod, request: Message, context: CallContext): Promise<Message> {
    checkToken(bound.binding, context.requestHeader);
    return bound.handler(request, context);
  }

  const routes = unaryRoutes(allBindings);
  const served = [
    ...bindings.map((b) => b.service),
    Health,
    reflectionV1.ServerReflection,
    reflectionV1alpha.ServerReflection,
  ];
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
    authorize: (bound, header) => checkToken(bound.binding, header),
    invoke: (bound, request, context) => bound.handler(request, context),
    defaultTimeoutMs: options.rpcTimeoutMs,
    maxMessageBytes: options.maxMessageBytes,
    logger,
  });

  const registry = createRegistry(...served.map((service) => service.file));
  const reflection = reflectionServices(
    registry,
    served.map((service) => service.typeName),
  );

  const connectHandler = connectNodeAdapter({
    readMaxBytes: options.maxMessageBytes,
    shutdownSignal: shutdown.signal,
    routes(router: ConnectRouter) {
      for (const binding of allBindings) {
        const methods: Record<string, (request: Message, context: HandlerContext) => Promise<Message>> = {};
        for (const method of binding.service.methods) {
          const bound = routes.get(`/${binding.service.typeName}/${method.name}`);
          if (!bound) continue;
          methods[method.localName] = async (request, context) => {
            const signal = AbortSignal.any([context.signal, AbortSignal.timeout(options.rpcTimeoutMs)]);
            try {
              return await raceSignal(signal, () =>
                invoke(bound, request, { signal, requestHeader: context.requestHeader }),
              );
            } catch (error) {
              throw toConnectError(toRpcStatus(error, binding.errorStyle, logger));
            }
          };
        }
        const extra = binding.service === Health ? healthWatch(health) : {};
        // The handlers are typed by descriptor at runtime; connect checks the method set.
        router.service(binding.service, { ...methods, ...extra } as never);
      }
      router.service(reflectionV1.ServerReflection, reflection.v1);
      router.service(reflectionV1alpha.ServerReflection, reflection.v1alpha);
    },
  });

  const connections = createConnectionTracker(options, logger);
  let closing = false;

  // HTTP/1.1 requests all go to connect-node. While closing, each one ends its connection, and a connection
  // whose request finishes is closed at once instead of idling in keep-alive.
  const dispatch = (req: IncomingMessage, res: ServerResponse) => {
    if (closing) res.setHeader("connection", "close");
    res.once("close", () => {
      if (closing) http1.closeIdleConnections();
    });
    return connectHandler(req, res);
  };

  /**
   * HTTP/2 streams are taken from the session's `stream` event, before node's compatibility layer: the fast
   * path works on the raw stream; any other stream gets the compatibility objects that node itself would
   * have made (`Http2ServerRequest`/`Http2ServerResponse`, as in its `onServerStream`) and goes to
   * connect-node. Without a `request` listener on an HTTP/2 server, node makes no compatibility objects.
   */
  const Request = Http2ServerRequest as unknown as new (
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    options: undefined,
    rawHeaders: string[],
  ) => Http2ServerRequest;
  const Response = Http2ServerResponse as unknown as new (stream: ServerHttp2Stream) => Http2ServerResponse;
  const onStream = (
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    _flags: number,
    rawHeaders: string[],
  ) => {
    // First of all (style habit 16): a stream without an `error` listener turns a peer's RST_STREAM into an
    // uncaught exception. Every error also closes the stream, and 'close' is what the paths act on.
    stream.on("error", ignoreStreamError);
    if (fastPath.handles(headers)) fastPath.serve(stream, headers);
    else connectHandler(new Request(stream, headers, undefined, rawHeaders), new Response(stream));
  };

  const http2 = createHttp2Server({
    maxSessionMemory: options.sessionMemoryMb,
    settings: { maxConcurrentStreams: options.maxConcurrentStreams },
  });
  http2.on("stream", onStream);
  http2.on("session", (session: Http2Session) => {
    session.on("error", (error) => logger.debug("api session error", { error }));
    connections.sessionStarted(session);
  });
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
  const listener = createListener({
    ...(options.tls ? { tls: options.tls } : {}),
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    connections,
    http1,
    http2,
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
      closing = true;
      listener.close();
      const started = Date.now();
      const drained = connections.closeAll(
        budgetMs,
        () => http1.closeIdleConnections(),
        () => http1.closeAllConnections(),
      );
      // Let what handlers have just written (health Watch's NOT_SERVING) go out, then end long streams.
      await new Promise((resolve) => setTimeout(resolve, Math.min(20, budgetMs)));
      shutdown.abort();
      await drained;
      logger.debug("api closed", { ms: Date.now() - started });
    },
  };
}

function ignoreStreamError() {
  // Nothing to do: the stream is closed with it, and its 'close' listener answers or cancels the call.
}

/** Options without the keys set to undefined, so the defaults apply to them. */
function definedOnly<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

export type ApiServer = ReturnType<typeof createApiServer>;
