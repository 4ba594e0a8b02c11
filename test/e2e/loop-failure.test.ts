import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

const fixture = new URL("./fixtures/failing-consumer-service.ts", import.meta.url).pathname;

test("a loop that fails for good under a running process: one clear log line, the staged stop, exit 70", {
  timeout: 60_000,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), "sfn-e2e-loop-"));
  try {
    const child = spawn(process.execPath, ["--import", "tsx", fixture], {
      env: {
        ...process.env,
        LOG_LEVEL: "info",
        GRPC_ADDR: "127.0.0.1:0",
        METRICS_ADDR: "127.0.0.1:0",
        DATABASE_URL: `sqlite:${join(dir, "db.sqlite")}`,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const [code] = (await once(child, "exit")) as [number | null];
    assert.equal(code, 70, stderr);
    const logs = stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { msg: string; level: string; loop?: string });
    const failures = logs.filter((l) => l.msg.includes("failed for good"));
    assert.equal(failures.length, 1, "logged once");
    assert.equal(failures[0]?.level, "error");
    assert.equal(failures[0]?.loop, "outbox consumer");
    const order = [
      "outbox consumer failed for good: stopping the process (exit 70)",
      "shutting down: NOT_SERVING, closing the API, draining loops",
      "shutdown complete",
      "stopped after a loop failed",
    ].map((msg) => logs.findIndex((l) => l.msg === msg));
    assert.ok(
      order.every((at, i) => at >= 0 && (i === 0 || at > (order[i - 1] ?? 0))),
      `in order: ${order}`,
    );
    assert.equal(stderr, "");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
