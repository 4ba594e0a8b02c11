import { type ChildProcessByStdio, spawn } from "node:child_process";
import type { Readable } from "node:stream";

export interface ServiceProcess {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  /** The API's port, read from the "api listening" log line. */
  readonly port: number;
  stdout(): string;
  stderr(): string;
}

/**
 * Starts the real process as deployed from source (`node --import tsx src/main.ts`), or with `built` as the
 * image runs it (`node <nodeArgs> dist/main.js`, built beforehand), with `env` over this process's
 * environment (info logs, the API and the metrics listener on free loopback ports, no Kafka unless `env`
 * says otherwise), and resolves once its API listens; rejects if it exits first.
 */
export async function startServiceProcess(
  env: Record<string, string>,
  options: { built?: boolean; nodeArgs?: readonly string[] } = {},
): Promise<ServiceProcess> {
  const entry = options.built ? ["dist/main.js"] : ["--import", "tsx", "src/main.ts"];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...entry], {
    env: {
      ...process.env,
      LOG_LEVEL: "info",
      GRPC_ADDR: "127.0.0.1:0",
      METRICS_ADDR: "127.0.0.1:0",
      KAFKA_BROKERS: "",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      const match = /"msg":"api listening"[^\n]*"address":"127\.0\.0\.1:(\d+)"/.exec(stdout);
      if (match) resolve(Number(match[1]));
    });
    child.once("exit", (code) => reject(new Error(`exited ${code} before listening: ${stderr}`)));
  });
  return { child, port, stdout: () => stdout, stderr: () => stderr };
}
