/** The API server's settings; the app passes each from its config key (src/config/config-spec.ts, `api`). */
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

/** The defaults of the optional settings above (the config keys' defaults are the same; a test checks it). */
export const API_SERVER_DEFAULTS = {
  handshakeTimeoutMs: 120_000,
  http1HeadersTimeoutMs: 60_000,
  http1RequestTimeoutMs: 300_000,
  maxConcurrentStreams: 100,
  sessionMemoryMb: 32,
  maxConnectionAgeMs: 0,
  maxConnectionAgeGraceMs: 30_000,
} as const;

export type ResolvedApiServerOptions = ApiServerOptions & {
  -readonly [K in keyof typeof API_SERVER_DEFAULTS]: number;
};

/** The options with the defaults filled in; a key set to undefined gets its default too. */
export function resolveApiServerOptions(options: ApiServerOptions): ResolvedApiServerOptions {
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  return { ...API_SERVER_DEFAULTS, ...defined } as ResolvedApiServerOptions;
}
