import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { imageCommand } from "../support/image-command.ts";

const root = new URL("../../", import.meta.url).pathname;

/** The image's health check (`HEALTHCHECK CMD [...]`), read from the Dockerfile itself. */
async function imageHealthCheck(): Promise<string[]> {
  const dockerfile = await readFile(join(root, "Dockerfile"), "utf8");
  const cmd = /^HEALTHCHECK[^\n]*\\\n\s*CMD\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1];
  assert.ok(cmd, "the Dockerfile has an exec-form HEALTHCHECK");
  assert.match(dockerfile, /^EXPOSE 9464$/m, "the image exposes the metrics port");
  return JSON.parse(cmd) as string[];
}

test("dist/main.js, built as the image builds it, starts as the image starts it, serves, and stops cleanly", async () => {
  await promisify(execFile)("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: root });
  const [command, ...args] = await imageCommand();
  assert.equal(command, "node");
  assert.ok(args.includes("dist/main.js"), `the image runs dist/main.js: ${args.join(" ")}`);

  const dir = await mkdtemp(join(tmpdir(), "sfn-dist-"));
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? "",
      NODE_ENV: "production",
      LOG_LEVEL: "info",
      GRPC_ADDR: "127.0.0.1:0",
      METRICS_ADDR: "127.0.0.1:0",
      DATABASE_URL: `sqlite:${join(dir, "db.sqlite")}`,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    const logs: Record<string, unknown>[] = [];
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    let metricsPort = 0;
    const started = new Promise<number>((resolve, reject) => {
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        for (const line of chunk.split("\n").filter(Boolean)) {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === "metrics listening")
            metricsPort = Number(String(entry.address).split(":").at(-1));
          if (entry.msg === "api listening") resolve(Number(String(entry.address).split(":").at(-1)));
        }
      });
      child.once("exit", (code) => reject(new Error(`exited with ${code} before listening: ${stderr}`)));
    });
    const port = await started;

    // A Connect call over HTTP/1.1: the health service answers from the compiled code.
    const response = await fetch(`http://127.0.0.1:${port}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { status: "SERVING" });

    // The metrics listener, on its own port: the probes, and the exposition with the RPC just made.
    assert.ok(metricsPort > 0, "the metrics listener logged its port before the API opened");
    assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/livez`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status, 200);
    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    assert.match(
      await metrics.text(),
      /^smartflow_notification_rpc_requests_total\{method="\/grpc\.health\.v1\.Health\/Check",code="OK"\} 1$/m,
    );
    // The image's health check, as Docker runs it, pointed at this process's port.
    const [checkCommand, ...checkArgs] = await imageHealthCheck();
    assert.equal(checkCommand, "node");
    const check = spawn(
      process.execPath,
      checkArgs.map((arg) => arg.replace("9464", String(metricsPort))),
      { stdio: "ignore" },
    );
    const [checkCode] = (await once(check, "exit")) as [number | null];
    assert.equal(checkCode, 0, "the health check passes against a live process");

    child.kill("SIGTERM");
    const [code] = (await once(child, "exit")) as [number | null];
    assert.equal(code, 0, stderr);
    assert.ok(
      logs.some((entry) => entry.msg === "shutdown complete"),
      "the staged shutdown ran to its end",
    );
    assert.equal(stderr, "", "nothing outside the JSON log");
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  }
});
