import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

/** The process edge, as deployed: `node --import tsx src/main.ts`. */
function startService(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: { ...process.env, LOG_LEVEL: "info", GRPC_ADDR: "127.0.0.1:0", METRICS_ADDR: "127.0.0.1:0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  let stderr = "";
  const waiters = new Set<() => void>();
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    lines.push(...chunk.split("\n").filter(Boolean));
    for (const check of waiters) check();
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const logged = (msg: string) => lines.some((line) => (JSON.parse(line) as { msg?: string }).msg === msg);
  return {
    child,
    lines,
    stderr: () => stderr,
    logged,
    until: (msg: string, timeoutMs = 30_000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!logged(msg)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(
          () => reject(new Error(`no "${msg}" log line; stderr: ${stderr}`)),
          timeoutMs,
        );
        waiters.add(check);
        check();
      }),
  };
}

test("SIGTERM drains in stages and exits 0, with structured JSON logs", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sfn-e2e-"));
  try {
    const service = startService({ DATABASE_URL: `sqlite:${join(dir, "db.sqlite")}` });
    await service.until("smartflow-notification started");
    service.child.kill("SIGTERM");
    const [code] = await once(service.child, "exit");
    assert.equal(code, 0);
    const order = [
      "signal received",
      "shutting down: NOT_SERVING, closing the API, draining loops",
      "shutdown complete",
    ];
    const positions = order.map((msg) =>
      service.lines.findIndex((line) => (JSON.parse(line) as { msg: string }).msg === msg),
    );
    assert.ok(
      positions.every((p) => p >= 0),
      `missing stages: ${JSON.stringify(positions)}`,
    );
    assert.deepEqual(
      [...positions].sort((a, b) => a - b),
      positions,
      "the stages come in order",
    );
    for (const line of service.lines) {
      const record = JSON.parse(line) as { level?: string; time?: string; msg?: string };
      assert.ok(record.level && record.time && record.msg, line);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a bad configuration value stops startup with exit code 2 and names the key", async () => {
  const service = startService({ DATABASE_URL: "sqlite::memory:", OUTBOX_RELAY_BATCH_SIZE: "lots" });
  const [code] = await once(service.child, "exit");
  assert.equal(code, 2);
  assert.match(service.stderr(), /configuration error: OUTBOX_RELAY_BATCH_SIZE must be a whole number/);
});
