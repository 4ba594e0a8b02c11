import { setting } from "./setting.ts";
import { integer } from "./value-parsers.ts";

/**
 * The API's connection limits (`config.api.connections`), a group of the spec table (config-spec.ts): each
 * is an `ApiServerOptions` field (src/api/api-server-options.ts) with the same default (a unit test checks
 * it), passed by src/app/api-wiring.ts.
 */
export const apiConnectionSpec = {
  handshakeTimeoutMs: setting(
    "API_HANDSHAKE_TIMEOUT_MS",
    "120000",
    integer(100),
    "a new connection must choose its protocol (HTTP/2: send its SETTINGS; with TLS: finish the TLS handshake, then the same again) within this, or it is closed (grpc-go: 120 s)",
  ),
  http1HeadersTimeoutMs: setting(
    "API_HTTP1_HEADERS_TIMEOUT_MS",
    "60000",
    integer(100),
    "HTTP/1.1: the request head must arrive within this (node's `headersTimeout`; answered 408)",
  ),
  http1RequestTimeoutMs: setting(
    "API_HTTP1_REQUEST_TIMEOUT_MS",
    "300000",
    integer(100),
    "HTTP/1.1: the whole request must arrive within this (node's `requestTimeout`; answered 408); at least API_HTTP1_HEADERS_TIMEOUT_MS",
  ),
  maxConcurrentStreams: setting(
    "API_MAX_CONCURRENT_STREAMS",
    "100",
    integer(1, 2 ** 31 - 1),
    "HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` per connection; compliant clients queue past it",
  ),
  sessionMemoryMb: setting(
    "API_SESSION_MEMORY_MB",
    "32",
    integer(1, 65_536),
    "memory one HTTP/2 session may hold in node's HTTP/2 layer; past it, new streams are refused (node's default: 10)",
  ),
  maxConnectionAgeMs: setting(
    "API_MAX_CONNECTION_AGE_MS",
    "0",
    integer(0),
    "an HTTP/2 connection older than this (± 10 %) gets GOAWAY, so a gateway's connection moves to new replicas; 0: never",
  ),
  maxConnectionAgeGraceMs: setting(
    "API_MAX_CONNECTION_AGE_GRACE_MS",
    "30000",
    integer(0),
    "after that GOAWAY, streams still open get this long before the connection is destroyed",
  ),
};
