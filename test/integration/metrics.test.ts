import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
} from "../../src/gen/grpc/health/v1/health_pb.ts";
import { recordOf, requestNotification, useDeliveryEnv } from "../support/delivery.ts";
import { rpcClient } from "../support/grpc-clients.ts";
import { probe, scrape } from "../support/scrape.ts";

const P = "smartflow_notification_";
const USER = 424_242_424_242;

describe("metrics as one notification flows (MariaDB + Kafka + the fake Feishu)", () => {
  const env = useDeliveryEnv("mysql+kafka");

  test("request → relay → consumer → delivery: each stage's counters move, by bounded labels only", async () => {
    await env.withApp(async (app, events) => {
      const port = app.metricsPort();
      assert.ok(port && port > 0, "the metrics listener is up on a port of its own");
      assert.notEqual(port, app.apiPort());
      const before = await scrape(port);
      const webhook = env.fake.flowUrl("metricsflowkey");
      // The channel is saved through the API (Connect, JSON): the RPC is counted by method and code.
      const saved = await fetch(
        `http://127.0.0.1:${app.apiPort()}/smartflow.notification.Notification/SaveFeishuWebhook`,
        {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            userId: String(USER),
            enabled: true,
            webhookUrl: webhook,
            authType: "none",
          }),
        },
      );
      assert.equal(saved.status, 200, await saved.text());
      // Two calls over HTTP/2 (the gRPC fast path): one answered, one refused.
      const grpc = rpcClient(`127.0.0.1:${app.apiPort()}`);
      const check = (service: string) =>
        grpc.unary("/grpc.health.v1.Health/Check", HealthCheckRequestSchema, HealthCheckResponseSchema, {
          service,
        });
      await check("");
      await assert.rejects(check("no.such.Service"));
      grpc.close();
      const outboxId = await requestNotification(app, { userId: USER, previewId: "asp_metrics" });
      const recordId = await recordOf(events, outboxId);
      await events.until("the attempt is written", () =>
        events
          .of<{ recordId: number; written: boolean }>("delivery:result")
          .some((r) => r.recordId === recordId && r.written),
      );
      await events.until("the outbox row's outcome is stored", () =>
        events.of<{ consumed: number[] }>("consumer:outcomes").some((o) => o.consumed.includes(outboxId)),
      );
      await events.until("the lag is reported", () => events.of("consumer:lag").length > 0);
      const after = await scrape(port);
      const moved = (sample: string) => after.get(sample) - before.get(sample);

      assert.equal(moved(`${P}outbox_relay_rows_published_total`), 1);
      assert.ok(moved(`${P}outbox_relay_batches_total`) >= 1);
      assert.equal(
        moved(`${P}outbox_relay_publish_duration_seconds_count`),
        moved(`${P}outbox_relay_batches_total`),
      );
      assert.equal(moved(`${P}outbox_consumer_messages_total{outcome="consumed"}`), 1);
      assert.equal(moved(`${P}delivery_attempts_total{provider="flow_trigger",outcome="success"}`), 1);
      assert.equal(moved(`${P}delivery_provider_duration_seconds_count{provider="flow_trigger"}`), 1);
      assert.equal(
        moved(
          `${P}rpc_requests_total{method="/smartflow.notification.Notification/SaveFeishuWebhook",code="OK"}`,
        ),
        1,
      );
      assert.equal(
        moved(
          `${P}rpc_duration_seconds_count{method="/smartflow.notification.Notification/SaveFeishuWebhook"}`,
        ),
        1,
      );
      const health = `${P}rpc_requests_total{method="/grpc.health.v1.Health/Check"`;
      assert.equal(moved(`${health},code="OK"}`), 1);
      assert.equal(moved(`${health},code="NOT_FOUND"}`), 1);
      // Gauges read from the stores at scrape time.
      assert.equal(after.get(`${P}outbox_rows{status="consumed"}`), 1);
      assert.equal(after.get(`${P}outbox_rows{status="pending"}`), 0);
      assert.equal(after.get(`${P}delivery_records{status="sent"}`), 1);
      assert.equal(after.get(`${P}delivery_retry_queue_records`), 0);
      assert.equal(after.get(`${P}store_poll_up`), 1);
      const lag = [...after.values].filter(([sample]) =>
        sample.startsWith(`${P}outbox_consumer_lag_messages{topic="${env.testEnv.topic}",partition="`),
      );
      assert.ok(lag.length > 0, "a lag gauge for the topic's partitions");
      for (const [, value] of lag) assert.equal(value, 0, "everything consumed: no lag");
      // prom-client's process and event-loop series.
      assert.ok(after.values.has("process_cpu_user_seconds_total"));
      assert.ok([...after.values.keys()].some((s) => s.startsWith("nodejs_eventloop_lag_seconds")));

      // Label cardinality: no user id, URL, host or webhook key in any series.
      for (const forbidden of [String(USER), "metricsflowkey", env.fake.host, "https://", "asp_metrics"]) {
        assert.ok(!after.text.includes(forbidden), `the scrape holds no ${forbidden}`);
      }
      assert.equal(await probe(port, "/livez"), 200);
      assert.equal(await probe(port, "/readyz"), 200);
    });
  });
});
