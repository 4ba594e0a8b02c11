import { readFileSync } from "node:fs";
import { createServer as createHttp1Server, type IncomingMessage, type ServerResponse } from "node:http";
import {
  createServer as createHttp2Server,
  Http2ServerRequest,
  Http2ServerResponse,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import { createServer as createNetServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { createRegistry, type Message } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Health } from "../gen/grpc/health/v1/health_pb.ts";
import * as reflectionV1 from "../gen/grpc/reflection/v1/reflection_pb.ts";
import * as reflectionV1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.ts";
import type { Logger } from "../lib/logger.ts";
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
}

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * One port for every protocol. A plain-text connection is routed by its first bytes: the HTTP/2 preface
 * (gRPC from the gateway, grpcurl, `buf curl`) goes to an HTTP/2 server, anything else to an HTTP/1.1 server
 * (Connect and gRPC-Web from browsers and curl). With TLS, ALPN decides. On HTTP/2 each stream is routed on
 * its own: unary `application/grpc` calls take the fast path; streaming calls (health Watch, reflection),
 * Connect and gRPC-Web over HTTP/2 go to connect-node. The same handlers serve both paths.
 */
export function createApiServer(deps: {
  readonly options: ApiServerOptions;
  readonly bindings: readonly ServiceBinding[];
  readonly health: HealthState;
  readonly logger: Logger;
}) {
  const { options, bindings, health, logger } = deps;
  const allBindings = [...bindings, healthBinding(health)];
  const checkToken = createTokenCheck(options.token);
  const shutdown = new AbortController();

  async function invoke(bound: BoundMethod, request: Message, context: CallContext): Promise<Message> {
    checkToken(bound.binding, context.requestHeader);
    return bound.handler(request, context);
  }

  const routes = unaryRoutes(allBindings);
  const fastPath = createGrpcFastPath({
    routes,
    authorize: (bound, header) => checkToken(bound.binding, header),
    invoke: (bound, request, context) => bound.handler(request, context),
    defaultTimeoutMs: options.rpcTimeoutMs,
    maxMessageBytes: options.maxMessageBytes,
    logger,
  });

  const served = [
    ...bindings.map((b) => b.service),
    Health,
    reflectionV1.ServerReflection,
    reflectionV1alpha.ServerReflection,
  ];
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

  // HTTP/1.1 requests all go to connect-node.
  const dispatch = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) =>
    connectHandler(req, res);

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
    if (fastPath.handles(headers)) fastPath.serve(stream, headers);
    else connectHandler(new Request(stream, headers, undefined, rawHeaders), new Response(stream));
  };

  const sessions = new Set<Http2Session>();
  const trackSessions = (server: {
    on(event: "session", listener: (session: Http2Session) => void): unknown;
  }) =>
    server.on("session", (session) => {
      sessions.add(session);
      session.once("close", () => sessions.delete(session));
    });

  const http2 = createHttp2Server({});
  http2.on("stream", onStream);
  trackSessions(http2);
  const http1 = createHttp1Server({ keepAliveTimeout: 65_000 }, dispatch);

  let listener: Server;
  if (options.tls) {
    // ALPN decides: "h2" goes to the HTTP/2 server (and its per-stream routing), anything else to HTTP/1.1.
    listener = createTlsServer(
      {
        cert: readFileSync(options.tls.certFile),
        key: readFileSync(options.tls.keyFile),
        ALPNProtocols: ["h2", "http/1.1"],
        ...(options.tls.clientCaFile
          ? { ca: readFileSync(options.tls.clientCaFile), requestCert: true, rejectUnauthorized: true }
          : {}),
      },
      (socket) => (socket.alpnProtocol === "h2" ? http2 : http1).emit("connection", socket),
    );
  } else {
    listener = createNetServer((socket: Socket) => {
      // Read until the first bytes tell HTTP/2's preface from an HTTP/1.1 request line, then hand the
      // socket (with those bytes put back) to the right server.
      let seen = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        seen = Buffer.concat([seen, chunk]);
        const n = Math.min(seen.length, H2_PREFACE.length);
        const isH2 = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
        if (isH2 && n < H2_PREFACE.length) return;
        socket.off("data", onData);
        socket.pause();
        socket.unshift(seen);
        // Leave the socket paused: each server reads the bytes put back itself (node's HTTP/2 session
        // feeds buffered data to its native parser on the next tick; resuming would drop them).
        (isH2 ? http2 : http1).emit("connection", socket);
        if (!isH2) socket.resume();
      };
      socket.on("data", onData);
      socket.on("error", (error) => logger.debug("api connection error", { error }));
    });
  }
  listener.on("tlsClientError", (error: Error) =>
    logger.debug("tls handshake failed", { error: error.message }),
  );

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
     * Stops accepting connections and calls, lets calls in flight finish within `graceMs` (streams such as
     * health Watch are told to end), then closes what is left.
     */
    async close(graceMs: number): Promise<void> {
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      for (const session of sessions) session.close();
      http1.closeIdleConnections();
      // Let what handlers have just written (health Watch's NOT_SERVING) go out, then end long streams.
      await new Promise((resolve) => setTimeout(resolve, 20));
      shutdown.abort();
      const timer = setTimeout(() => {
        for (const session of sessions) session.destroy();
        http1.closeAllConnections();
      }, graceMs);
      await closed;
      clearTimeout(timer);
    },
  };
}

export type ApiServer = ReturnType<typeof createApiServer>;
