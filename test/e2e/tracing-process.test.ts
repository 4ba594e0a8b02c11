import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { legacyClient } from "../support/grpc-clients.ts";
import { startServiceProcess } from "../support/service-process.ts";

/** A stand-in OTLP/HTTP collector on loopback: keeps each POSTed body. */
async function startCollector() {
  const bodies: { path: string; body: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      bodies.push({ path: req.url ?? "", body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { bodies, port: (server.address() as AddressInfo).port, close: () => server.close() };
}

const startService = startServiceProcess;

test("the process with an OTLP endpoint exports the RPC's span, continuing the caller's trace, by shutdown", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sfn-e2e-trace-"));
  const collector = await startCollector();
  try {
    const service = await startService({
      DATABASE_URL: `sqlite:${join(dir, "db.sqlite")}`,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collector.port}`,
      OTEL_SERVICE_NAME: "sfn-e2e",
    });
    const traceId = randomBytes(16).toString("hex");
    const client = legacyClient(`127.0.0.1:${service.port}`);
    await client.call(
      "GetFeishuWebhook",
      { user_id: 42 },
      { metadata: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } },
    );
    client.close();
    service.child.kill("SIGTERM");
    const [code] = await once(service.child, "exit");
    assert.equal(code, 0);
    assert.match(service.stdout(), /"msg":"tracing started"/);
    const exported = collector.bodies.filter((b) => b.path === "/v1/traces").map((b) => b.body);
    assert.ok(
      exported.some((body) => body.includes(traceId)),
      "the span reached the collector by exit",
    );
    assert.ok(
      exported.some((body) => body.includes("sfn-e2e")),
      "named by OTEL_SERVICE_NAME",
    );
    assert.ok(exported.some((body) => body.includes("smartflow.notification.Notification/GetFeishuWebhook")));
  } finally {
    collector.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("the process with no OTEL_* key starts no SDK and exports nothing", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sfn-e2e-trace-"));
  try {
    const env: Record<string, string> = {
      DATABASE_URL: `sqlite:${join(dir, "db.sqlite")}`,
      LOG_LEVEL: "debug",
    };
    for (const key of Object.keys(process.env)) if (key.startsWith("OTEL_")) env[key] = "";
    const service = await startService(env);
    service.child.kill("SIGTERM");
    const [code] = await once(service.child, "exit");
    assert.equal(code, 0);
    assert.match(service.stdout(), /"msg":"tracing is off"[^\n]*"reason":"no OTEL_\* key is set"/);
    assert.doesNotMatch(service.stdout(), /tracing started/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
