import { type ChildProcessWithoutNullStreams, execFile, spawn } from "node:child_process";
import { createInterface } from "node:readline";

const script = new URL("../../scripts/go-gateway.sh", import.meta.url).pathname;
/** scripts/go-gateway.sh's exit code when the Debian packages cannot be had. */
export const UNAVAILABLE_EXIT = 3;

export type GoGatewayBuild =
  | { readonly available: true; readonly binary: string }
  | { readonly available: false; readonly reason: string };

/**
 * Builds the Go gateway client (installing Debian's grpc-go packages when missing). Resolves "unavailable"
 * with the script's own message when it exits 3; any other failure rejects.
 */
export function buildGoGateway(env: NodeJS.ProcessEnv = process.env): Promise<GoGatewayBuild> {
  return new Promise((resolve, reject) => {
    execFile(script, ["build"], { env, timeout: 900_000, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      if (!error) {
        resolve({ available: true, binary: stdout.trim().split("\n").at(-1) ?? "" });
      } else if (error.code === UNAVAILABLE_EXIT) {
        const line = stderr.split("\n").find((l) => l.includes("unavailable:")) ?? stderr.trim();
        resolve({ available: false, reason: `grpc-go client not built: ${line}` });
      } else {
        reject(new Error(`scripts/go-gateway.sh failed (${error.code ?? error.signal}):\n${stderr}`));
      }
    });
  });
}

/** A command for the Go client (test/go-gateway/main.go); user ids go as strings so every int64 survives. */
export interface GoCall {
  readonly op: "get" | "save" | "delete" | "test";
  readonly user_id: number | bigint;
  readonly enabled?: boolean;
  readonly webhook_url?: string;
  readonly auth_type?: string;
  readonly bearer_token?: string;
  readonly deadline_ms?: number;
  readonly cancel_ms?: number;
}
export interface GoBurst {
  readonly op: "burst";
  readonly n: number;
  readonly calls: readonly GoCall[];
}

export interface GoResult {
  readonly op: string;
  /** grpc-go's codes.Code name: OK, Unauthenticated, InvalidArgument, DeadlineExceeded, … */
  readonly code: string;
  readonly message: string;
  readonly error_info?: {
    readonly domain: string;
    readonly reason: string;
    readonly metadata: Record<string, string>;
  };
  /** One entry per status detail: "google.rpc.ErrorInfo", another Go type, or "undecodable: …". */
  readonly details?: readonly string[];
  /** The response as jsonpb prints it (proto names, defaults included, int64 as strings). */
  readonly response?: Record<string, unknown>;
  readonly header?: Record<string, string[]>;
  readonly trailer?: Record<string, string[]>;
  readonly elapsed_ms: number;
  /** Connections the client's dialer opened so far. */
  readonly dials: number;
  /** burst: calls per code, and the slowest call. */
  readonly counts?: Record<string, number>;
  readonly max_ms?: number;
}

const wire = (call: GoCall) => ({ ...call, user_id: String(call.user_id) });

/** Starts the Go client against `address`; commands run one after another, each answered by one line. */
export function startGoGateway(binary: string, address: string) {
  const child: ChildProcessWithoutNullStreams = spawn(binary, ["-addr", address]);
  const waiting: { resolve: (r: GoResult) => void; reject: (e: Error) => void }[] = [];
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  createInterface({ input: child.stdout }).on("line", (line) => {
    waiting.shift()?.resolve(JSON.parse(line) as GoResult);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on("exit", (code) => {
      for (const w of waiting.splice(0)) w.reject(new Error(`go-gateway exited (${code}): ${stderr}`));
      resolve(code);
    });
  });
  return {
    run(command: GoCall | GoBurst): Promise<GoResult> {
      const body = command.op === "burst" ? { ...command, calls: command.calls.map(wire) } : wire(command);
      return new Promise((resolve, reject) => {
        waiting.push({ resolve, reject });
        child.stdin.write(`${JSON.stringify(body)}\n`);
      });
    },
    /** Closes stdin (the client closes its connection and exits) and returns its exit code. */
    async close(): Promise<number | null> {
      child.stdin.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
    stderr: () => stderr,
  };
}

export type GoGateway = ReturnType<typeof startGoGateway>;
