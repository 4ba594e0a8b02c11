import { timingSafeEqual } from "node:crypto";
import type { DescMethod, DescService, Message } from "@bufbuild/protobuf";
import { AppError } from "../lib/errors.ts";
import type { ErrorStyle } from "./error-mapping.ts";

/** What a handler sees of a call, whichever transport carried it. */
export interface CallContext {
  /** Aborts at the call's deadline (the client's, capped by the server's RPC timeout) or on cancellation. */
  readonly signal: AbortSignal;
  /** Request headers (lower-case names); a `Headers` or a cheap view of node's header object. */
  readonly requestHeader: { get(name: string): string | null };
}

export type UnaryHandler = (request: Message, context: CallContext) => Promise<Message>;

/** A service's unary handlers, written once and served by the gRPC fast path and by connect-node alike. */
export interface ServiceBinding {
  readonly service: DescService;
  readonly errorStyle: ErrorStyle;
  /** Whether the API bearer token (when one is configured) is required. */
  readonly requiresToken: boolean;
  readonly handlers: Readonly<Record<string, UnaryHandler>>;
}

export interface BoundMethod {
  readonly binding: ServiceBinding;
  readonly method: DescMethod;
  readonly handler: UnaryHandler;
}

/** `/package.Service/Method` → its handler, for every unary method of the bindings. */
export function unaryRoutes(bindings: readonly ServiceBinding[]): Map<string, BoundMethod> {
  const routes = new Map<string, BoundMethod>();
  for (const binding of bindings) {
    for (const method of binding.service.methods) {
      const handler = binding.handlers[method.localName];
      if (method.methodKind !== "unary" || !handler) continue;
      routes.set(`/${binding.service.typeName}/${method.name}`, { binding, method, handler });
    }
  }
  return routes;
}

/** Longest `authorization` header looked at; a longer one is refused without being compared. */
export const MAX_AUTHORIZATION_BYTES = 4_096;

/**
 * Checks `authorization: Bearer <token>` when a token is configured: the scheme is case-insensitive and may
 * be followed by several spaces (RFC 7235 §2.1); the token is compared in constant time.
 */
export function createTokenCheck(token: string | undefined) {
  const expected = token ? Buffer.from(token) : undefined;
  return (binding: ServiceBinding, header: CallContext["requestHeader"]) => {
    if (!expected || !binding.requiresToken) return;
    const given = bearerToken(header.get("authorization"));
    if (!given || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new AppError("unauthenticated", "a valid bearer token is required", { reason: "unauthorized" });
    }
  };
}

function bearerToken(value: string | null): Buffer | undefined {
  if (!value || value.length > MAX_AUTHORIZATION_BYTES) return undefined;
  const space = value.indexOf(" ");
  if (space < 0 || value.slice(0, space).toLowerCase() !== "bearer") return undefined;
  const token = value.slice(space + 1).trim();
  return token ? Buffer.from(token) : undefined;
}
