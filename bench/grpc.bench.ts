/**
 * The gRPC serving path: GetFeishuWebhook served from MariaDB by this service as the image runs it (built,
 * `node <the Dockerfile's flags> dist/main.js`, its own process), against a bare @grpc/grpc-js server
 * answering a constant (its own process, the same node flags), with the same load generator (h2load; without it bench/grpc-load.ts, its own process), in
 * alternating rounds of the same run. Every call of h2load asks for one user (42): the calls that share a read
 * share its answer. A second phase spreads the calls over 1,000 users (so nearly every call builds and encodes
 * its own answer), driven for both servers by the gateway's own stack (grpc-go, test/go-gateway's `load`, 4
 * connections x 16 streams), which can vary the request; without Go, by bench/grpc-load.ts.
 *   make bench BENCH=grpc    or   npx tsx bench/grpc.bench.ts [calls] [rounds]
 */
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config/load-config.ts";
import { createLogger } from "../src/lib/logger.ts";
import { givenChannel } from "../test/support/delivery.ts";
import { imageNodeArgs } from "../test/support/image-command.ts";
import { startServiceProcess } from "../test/support/service-process.ts";
import { getRequestFrameFile } from "./grpc-support.ts";
import { median, percentile, withDatabase } from "./support.ts";

const run = promisify(execFile);
const calls = process.argv[2] ?? "20000";
const rounds = Number(process.argv[3] ?? 3);

type Load = { rps: number; p50Ms: number; p99Ms: number };
/** The Dockerfile's `CMD` flags, unless BENCH_NODE_ARGS says others (`BENCH_NODE_ARGS=` for none). */
const SERVICE_NODE_ARGS = await imageNodeArgs(process.env.BENCH_NODE_ARGS);
const SPREAD_USERS = 1_000;

const h2load = await run("h2load", ["--version"]).then(
  () => true,
  () => false,
);
/** The grpc-go client (scripts/go-gateway.sh builds it; exit 3: Go's packages cannot be had here). */
const goGateway = await run("scripts/go-gateway.sh").then(
  ({ stdout }) => stdout.trim(),
  () => undefined,
);
const spreadGenerator = goGateway ? "grpc-go client" : "grpc-js client";
const { dir, file: bodyFile } = await getRequestFrameFile("sfn-grpc-bench-");

/**
 * h2load (as in measured-here.md): `calls` requests over 4 connections x 16 streams, the body a gRPC frame;
 * p50/p99 from its per-request log. Without h2load, the closed-loop Node client in bench/grpc-load.ts.
 */
async function load(port: number, users?: number): Promise<Load> {
  if (goGateway && users !== undefined) {
    const command = { op: "load", n: Number(calls), conns: 4, streams: 16, users };
    const { stdout } = await run(goGateway, ["-addr", `127.0.0.1:${port}`, JSON.stringify(command)]);
    const result = JSON.parse(stdout) as {
      code: string;
      counts: object;
      rps: number;
      p50_ms: number;
      p99_ms: number;
    };
    if (result.code !== "OK" || Object.keys(result.counts).join() !== "OK") {
      throw new Error(`go-gateway load: ${stdout}`);
    }
    return { rps: Math.round(result.rps), p50Ms: result.p50_ms, p99Ms: result.p99_ms };
  }
  if (h2load && users === undefined) {
    const log = join(dir, `h2load-${port}-${Date.now()}.log`);
    const url = `http://127.0.0.1:${port}/smartflow.notification.Notification/GetFeishuWebhook`;
    const args = ["-n", calls, "-c", "4", "-m", "16", "-d", bodyFile, "-H", "content-type: application/grpc"];
    const { stdout } = await run("h2load", [...args, "-H", "te: trailers", `--log-file=${log}`, url]);
    const rps = Number(/finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(stdout)?.[1] ?? 0);
    const failed = Number(/(\d+) failed/.exec(stdout)?.[1] ?? 0);
    if (failed > 0) throw new Error(`h2load: ${failed} requests failed\n${stdout}`);
    const durations = (await readFile(log, "utf8"))
      .trim()
      .split("\n")
      .map((line) => Number(line.split("\t")[2]) / 1000);
    const at = (q: number) => percentile(durations, q * 100);
    return { rps: Math.round(rps), p50Ms: Number(at(0.5).toFixed(2)), p99Ms: Number(at(0.99).toFixed(2)) };
  }
  const node = ["--import", "tsx", "bench/grpc-load.ts", `127.0.0.1:${port}`, calls, "4", "16"];
  if (users !== undefined) node.push(String(users));
  const { stdout } = await run(process.execPath, node);
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as Load;
}

/** The baseline, in its own process with the service's node flags (bench/bare-grpc-server.ts). */
async function bareServer(): Promise<{ port: number; stop: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    [...SERVICE_NODE_ARGS, "--import", "tsx", "bench/bare-grpc-server.ts"],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      const match = /listening (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once("exit", (code) => reject(new Error(`bare grpc-js server exited ${code}`)));
  });
  return {
    port,
    async stop() {
      child.kill("SIGTERM");
      if (child.exitCode === null) await once(child, "exit");
    },
  };
}

await withDatabase(async (url) => {
  const config = loadConfig({
    LOG_LEVEL: "warn",
    DATABASE_URL: url,
    GRPC_ADDR: "127.0.0.1:0",
    METRICS_ADDR: "",
  });
  // The channels are saved by an app in this process; the service measured is the built one, in its own
  // process with the image's flags, as production runs it.
  const app = createApp(config, { logger: createLogger("warn") });
  await app.start();
  for (let user = 1; user <= SPREAD_USERS; user++) {
    await givenChannel(
      app,
      user,
      `https://www.feishu.cn/flow/api/trigger-webhook/abcdefgh${10_000_000 + user}`,
    );
  }
  await app.stop();
  await run("npx", ["tsc", "-p", "tsconfig.build.json"]);
  const service = await startServiceProcess(
    { DATABASE_URL: url, METRICS_ADDR: "" },
    { built: true, nodeArgs: SERVICE_NODE_ARGS },
  );
  const servicePort = service.port;
  const bare = await bareServer();
  // One unmeasured round each first: the first calls also pay for JIT compilation and pools filling up.
  await load(bare.port);
  await load(servicePort);
  const ours: Awaited<ReturnType<typeof load>>[] = [];
  const baseline: Awaited<ReturnType<typeof load>>[] = [];
  for (let round = 1; round <= rounds; round++) {
    baseline.push(await load(bare.port));
    ours.push(await load(servicePort));
    console.log(
      `round ${round}: bare grpc-js ${baseline.at(-1)?.rps} req/s, service ${ours.at(-1)?.rps} req/s (p99 ${ours.at(-1)?.p99Ms} ms)`,
    );
  }
  const spreadOurs: Load[] = [];
  const spreadBaseline: Load[] = [];
  for (let round = 1; round <= Math.max(1, Math.ceil(rounds / 2)); round++) {
    spreadBaseline.push(await load(bare.port, SPREAD_USERS));
    spreadOurs.push(await load(servicePort, SPREAD_USERS));
    console.log(
      `spread round ${round} (${spreadGenerator}, ${SPREAD_USERS} users): bare grpc-js ${spreadBaseline.at(-1)?.rps} req/s, service ${spreadOurs.at(-1)?.rps} req/s (p99 ${spreadOurs.at(-1)?.p99Ms} ms)`,
    );
  }
  await bare.stop();
  service.child.kill("SIGTERM");
  await once(service.child, "exit");
  const b = median(baseline.map((r) => r.rps));
  const o = median(ours.map((r) => r.rps));
  const sb = median(spreadBaseline.map((r) => r.rps));
  const so = median(spreadOurs.map((r) => r.rps));
  console.log(
    JSON.stringify({
      bench: "grpc",
      serviceNodeArgs: SERVICE_NODE_ARGS.join(" "),
      calls: Number(calls),
      loadGenerator: h2load ? "h2load" : "grpc-js client",
      streams: 64,
      bareGrpcJsRps: b,
      serviceRps: o,
      ratio: Number((o / b).toFixed(2)),
      serviceP99Ms: median(ours.map((r) => r.p99Ms)),
      bareP99Ms: median(baseline.map((r) => r.p99Ms)),
      spread: {
        users: SPREAD_USERS,
        loadGenerator: spreadGenerator,
        bareGrpcJsRps: sb,
        serviceRps: so,
        ratio: Number((so / sb).toFixed(2)),
        serviceP99Ms: median(spreadOurs.map((r) => r.p99Ms)),
        bareP99Ms: median(spreadBaseline.map((r) => r.p99Ms)),
      },
    }),
  );
});
