import { apiConnectionSpec } from "./api-connection-spec.ts";
import { optional, setting } from "./setting.ts";
import { address, boolean, integer, text } from "./value-parsers.ts";

/** The API keys (`config.api`), a group of the spec table (config-spec.ts); its connection limits are in api-connection-spec.ts. */
export const apiSpec = {
  address: setting("GRPC_ADDR", "0.0.0.0:9082", address, "the API's one port: gRPC, Connect and gRPC-Web"),
  rpcTimeoutMs: setting(
    "RPC_TIMEOUT_MS",
    "6000",
    integer(100),
    "server deadline of a call (a client's shorter one wins)",
  ),
  maxMessageBytes: setting("RPC_MAX_MESSAGE_BYTES", "4194304", integer(1_024), "largest request accepted"),
  token: optional("API_TOKEN", text, "bearer token callers must send; the operations service requires it"),
  tokenForLegacy: setting(
    "API_TOKEN_FOR_LEGACY",
    "false",
    boolean,
    "also require API_TOKEN on smartflow.notification.Notification",
  ),
  tlsCertFile: optional("TLS_CERT_FILE", text, "serve TLS with this certificate (PEM); needs TLS_KEY_FILE"),
  tlsKeyFile: optional("TLS_KEY_FILE", text, "the certificate's private key (PEM)"),
  tlsClientCaFile: optional(
    "TLS_CLIENT_CA_FILE",
    text,
    "require client certificates signed by this CA (mTLS)",
  ),
  healthCheckIntervalMs: setting(
    "HEALTH_CHECK_INTERVAL_MS",
    "2000",
    integer(10),
    "how often health pings the database",
  ),
  connections: apiConnectionSpec,
};
