import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { App } from "../../src/app.ts";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../src/gen/grpc/health/v1/health_pb.ts";
import { givenChannel, recordOf, requestNotification, useDeliveryEnv } from "../support/delivery.ts";
import { rpcClient } from "../support/grpc-clients.ts";
import { createTestEnv, recordEvents, startApp, type TestEnv } from "../support/harness.ts";
import { probe, scrape } from "../support/scrape.ts";
import { startTcpProxy } from "../support/tcp-proxy.ts";

/** gRPC health's answer for the whole server, over HTTP/2. */
async function grpcHealth(app: App) {
  const client = rpcClient(`127.0.0.1:${app.apiPort()}`);
  try {
    const reply = await client.unary(
      "/grpc.health.v1.Health/Check",
      HealthCheckRequestSchema,
      HealthCheckResponseSchema,
      {},
    );
    return reply.status;
  } finally {
    client.close();
  }
}

/** Resolves at the health state's next change. */
function nextHealthChange(app: App): Promise<void> {
  return new Promise((resolve) => {
    const off = app.health.onChange(() => {
      off();
      resolve();
    });
  });
}

describe("/readyz follows gRPC health: NOT ready while draining at shutdown", () => {
  const env = useDeliveryEnv("sqlite+memory");

  test("a send in flight holds the drain: /readyz 503 and /livez 200 meanwhile; the listener closes last", async () => {
    const app = await startApp(env.testEnv);
    const events = recordEvents(app);
    const port = app.metricsPort();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let arrived: () => void = () => undefined;
    const inFlight = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    env.fake.script("probeskey", {
      before: async () => {
        arrived();
        await gate;
      },
    });
    await givenChannel(app, 77, env.fake.flowUrl("probeskey"));
    assert.equal(await probe(port, "/readyz"), 200);
    const outboxId = await requestNotification(app, { userId: 77, previewId: "asp_probes" });
    await recordOf(events, outboxId);
    await inFlight;

    const stopped = app.stop();
    assert.equal(await probe(port, "/readyz"), 503, "draining: not ready");
    assert.equal(await probe(port, "/livez"), 200, "draining is not a failure");
    assert.equal((await scrape(port)).get("smartflow_notification_delivery_queue_jobs"), 1);
    release();
    await stopped;
    await assert.rejects(fetch(`http://127.0.0.1:${port}/livez`), "the listener is closed after the stop");
  });
});

describe("/readyz follows gRPC health: NOT ready while the database does not answer (MariaDB behind a proxy)", () => {
  let testEnv: TestEnv;
  before(async () => {
    testEnv = await createTestEnv("mysql+kafka", { HEALTH_CHECK_INTERVAL_MS: "50" });
  });
  after(async () => {
    await testEnv.dispose();
  });

  test("refused connections: 503 and NOT_SERVING together, /metrics still answers; back: 200 and SERVING", async () => {
    const url = new URL(testEnv.env.DATABASE_URL ?? "");
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 3306) });
    url.host = `127.0.0.1:${proxy.port}`;
    const app = await startApp(testEnv, { env: { DATABASE_URL: url.toString() } });
    const port = app.metricsPort();
    try {
      assert.equal(await probe(port, "/readyz"), 200);
      assert.equal(await grpcHealth(app), ServingStatus.SERVING);

      const down = nextHealthChange(app);
      await proxy.refuse();
      await down;
      assert.equal(await probe(port, "/readyz"), 503);
      assert.equal(await grpcHealth(app), ServingStatus.NOT_SERVING);
      assert.equal(await probe(port, "/livez"), 200, "a database outage is not a loop failure");
      const scraped = await scrape(port);
      assert.equal(
        scraped.get("smartflow_notification_store_poll_up"),
        0,
        "the scrape says the gauges are stale",
      );

      const up = nextHealthChange(app);
      await proxy.accept();
      await up;
      assert.equal(await probe(port, "/readyz"), 200);
      assert.equal(await grpcHealth(app), ServingStatus.SERVING);
      assert.equal((await scrape(port)).get("smartflow_notification_store_poll_up"), 1);
    } finally {
      await app.stop();
      await proxy.close();
    }
  });
});
