import { createRegistry, type DescService, type Message } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Health } from "../gen/grpc/health/v1/health_pb.ts";
import * as reflectionV1 from "../gen/grpc/reflection/v1/reflection_pb.ts";
import * as reflectionV1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.ts";
import type { Logger } from "../lib/logger.ts";
import { raceSignal, toConnectError, toRpcStatus } from "./error-mapping.ts";
import { type HealthState, healthWatch } from "./health.ts";
import { reflectionServices } from "./reflection.ts";
import type { BoundMethod, CallContext, ServiceBinding } from "./rpc-binding.ts";

/** Every service served on the port: the bindings', health and reflection (v1 and v1alpha). */
export function servedServices(bindings: readonly ServiceBinding[]): DescService[] {
  return [
    ...bindings.map((b) => b.service),
    Health,
    reflectionV1.ServerReflection,
    reflectionV1alpha.ServerReflection,
  ];
}

/**
 * connect-node's handler for what the gRPC fast path does not take: Connect and gRPC-Web (HTTP/1.1 and
 * HTTP/2), `application/grpc+json`, and the streaming methods (health Watch, reflection). Unary calls run
 * the same handlers as the fast path, under the same deadline and error mapping.
 */
export function createConnectHandler(deps: {
  /** The bindings, health's included. */
  readonly bindings: readonly ServiceBinding[];
  readonly routes: ReadonlyMap<string, BoundMethod>;
  readonly served: readonly DescService[];
  readonly health: HealthState;
  readonly invoke: (bound: BoundMethod, request: Message, context: CallContext) => Promise<Message>;
  readonly rpcTimeoutMs: number;
  readonly maxMessageBytes: number;
  /** Ends long streams (health Watch) at shutdown. */
  readonly shutdownSignal: AbortSignal;
  readonly logger: Logger;
}) {
  const { bindings, routes, served, health, invoke, rpcTimeoutMs, logger } = deps;
  const registry = createRegistry(...served.map((service) => service.file));
  const reflection = reflectionServices(
    registry,
    served.map((service) => service.typeName),
  );
  return connectNodeAdapter({
    readMaxBytes: deps.maxMessageBytes,
    shutdownSignal: deps.shutdownSignal,
    routes(router: ConnectRouter) {
      for (const binding of bindings) {
        const methods: Record<string, (request: Message, context: HandlerContext) => Promise<Message>> = {};
        for (const method of binding.service.methods) {
          const bound = routes.get(`/${binding.service.typeName}/${method.name}`);
          if (!bound) continue;
          methods[method.localName] = async (request, context) => {
            const signal = AbortSignal.any([context.signal, AbortSignal.timeout(rpcTimeoutMs)]);
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
}
