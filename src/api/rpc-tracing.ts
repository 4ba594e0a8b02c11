import type { Message } from "@bufbuild/protobuf";
import { ROOT_CONTEXT } from "@opentelemetry/api";
import { contextOfCarrier, inSpan, SpanKind, tracingStarted } from "../lib/trace-context.ts";
import type { BoundMethod, CallContext } from "./rpc-binding.ts";

/**
 * Runs a unary handler in the call's server span, whichever transport carried it (the gRPC fast path or
 * connect-node): the span continues the caller's W3C `traceparent` (and `tracestate`) request header, or
 * starts a new trace, so what the handler enqueues carries one. With no SDK started it is the API's no-op.
 */
export function tracedInvoke(
  bound: BoundMethod,
  context: CallContext,
  invoke: () => Promise<Message>,
): Promise<Message> {
  const traceparent = context.requestHeader.get("traceparent");
  // No SDK and nothing to continue: a span would be the API's no-op, built and dropped on every call.
  if (!traceparent && !tracingStarted()) return invoke();
  const tracestate = context.requestHeader.get("tracestate");
  const parent = traceparent
    ? contextOfCarrier({ traceparent, ...(tracestate ? { tracestate } : {}) })
    : undefined;
  const service = bound.binding.service.typeName;
  return inSpan(
    `${service}/${bound.method.name}`,
    {
      kind: SpanKind.SERVER,
      attributes: { "rpc.system": "grpc", "rpc.service": service, "rpc.method": bound.method.name },
      parent: parent ?? ROOT_CONTEXT,
    },
    invoke,
  );
}
