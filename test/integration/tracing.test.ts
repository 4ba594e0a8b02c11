import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import kafkajs from "kafkajs";
import { sql } from "kysely";
import { startTracingWithExporter } from "../../src/app/tracing-sdk.ts";
import { type App, createApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config/load-config.ts";
import {
  RequestFeishuNotificationRequestSchema,
  RequestFeishuNotificationResponseSchema,
} from "../../src/gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import { createLogger } from "../../src/lib/logger.ts";
import {
  attemptOf,
  feishuEnv,
  givenChannel,
  recordOf,
  requestedPayload,
  requestNotification,
} from "../support/delivery.ts";
import { type FakeFeishu, startFakeFeishu } from "../support/fake-feishu.ts";
import { rpcClient } from "../support/grpc-clients.ts";
import {
  type Backend,
  backends,
  createTestEnv,
  query,
  recordEvents,
  type TestEnv,
} from "../support/harness.ts";
import { testBrokers, uniqueName } from "../support/kafka.ts";

// The SDK, started through the adapter's test hook, once for this process: every span is kept in memory.
const exporter = new InMemorySpanExporter();
startTracingWithExporter(exporter);

const OPS = "/smartflow.notification.v1.NotificationOpsService";
const INCOMING_SPAN = "00f067aa0ba902b7";
/** A trace id of this test's own (the span exporter holds every test's spans). */
const newTraceId = () => randomBytes(16).toString("hex");

/** The messages of a topic with their headers, read from the beginning by a kafkajs consumer of its own. */
async function kafkaMessages(topic: string, outboxId: number) {
  const kafka = new kafkajs.Kafka({
    clientId: uniqueName("trace-reader"),
    brokers: testBrokers(),
    logLevel: kafkajs.logLevel.NOTHING,
  });
  const consumer = kafka.consumer({ groupId: uniqueName("trace-reader"), maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    return await new Promise<Record<string, string>>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`outbox row ${outboxId} not found on ${topic}`)),
        30_000,
      );
      void consumer.run({
        eachMessage: async ({ message }) => {
          const value = JSON.parse(message.value?.toString("utf8") ?? "{}") as { outbox_id?: number };
          if (value.outbox_id !== outboxId) return;
          clearTimeout(timer);
          const headers: Record<string, string> = {};
          for (const [name, raw] of Object.entries(message.headers ?? {})) headers[name] = String(raw);
          resolve(headers);
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
}

const spansOf = (traceId: string) =>
  exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
const one = (spans: ReadableSpan[], kind: SpanKind, what: string) => {
  const found = spans.filter((s) => s.kind === kind);
  assert.equal(found.length, 1, `one ${what} span (${spans.map((s) => `${s.name}/${s.kind}`).join(", ")})`);
  return found[0] as ReadableSpan;
};

for (const backend of backends) {
  describe(`trace context end to end on ${backend}`, () => {
    let fake: FakeFeishu;
    let testEnv: TestEnv;
    let app: App;
    let lines: string[];
    let events: ReturnType<typeof recordEvents>;
    before(async () => {
      fake = await startFakeFeishu();
      testEnv = await createTestEnv(backend as Backend, feishuEnv(fake));
      lines = [];
      const config = loadConfig({ ...testEnv.env, LOG_LEVEL: "info" });
      app = createApp(config, { logger: createLogger("info", (line) => lines.push(line)) });
      events = recordEvents(app);
      await app.start();
    });
    after(async () => {
      await app?.stop();
      await fake?.close();
      await testEnv?.dispose();
    });

    const rowEnvelope = async (outboxId: number) => {
      const [row] = await query<{ payload: string }>(
        app,
        sql`select payload from ${sql.table(app.route.table)} where id = ${outboxId}`,
      );
      return JSON.parse(String(row?.payload)) as { traceparent?: string; payload: { trace_id?: string } };
    };
    const logsOf = (recordId: number) =>
      lines
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((line) => line.notification_id === recordId);

    const request = (userId: bigint, previewId: string, metadata: Record<string, string>) => {
      const ops = rpcClient(`127.0.0.1:${app.apiPort()}`);
      return ops
        .unary(
          `${OPS}/RequestFeishuNotification`,
          RequestFeishuNotificationRequestSchema,
          RequestFeishuNotificationResponseSchema,
          {
            eventId: `evt-${previewId}`,
            userId,
            previewId,
            triggerType: "t",
            targetUrl: `/assistant/${previewId}`,
          },
          { metadata },
        )
        .finally(() => ops.close());
    };

    test("an incoming gRPC traceparent reaches the row, the Kafka headers, the spans and the log lines", async () => {
      await givenChannel(app, 601, fake.flowUrl("flowkey0601"));
      const INCOMING_TRACE = newTraceId();
      const traceparent = `00-${INCOMING_TRACE}-${INCOMING_SPAN}-01`;
      const receipt = await request(601n, "asp_601", { traceparent, tracestate: "vendor=x" });
      const outboxId = Number(receipt.outboxId);
      const recordId = await recordOf(events, outboxId);
      assert.equal((await attemptOf(events, recordId)).status, "sent");

      const spans = spansOf(INCOMING_TRACE);
      const server = one(spans, SpanKind.SERVER, "server");
      assert.equal(server.name, "smartflow.notification.v1.NotificationOpsService/RequestFeishuNotification");
      assert.equal(server.parentSpanContext?.spanId, INCOMING_SPAN, "the server span continues the caller's");
      const serverSpan = server.spanContext().spanId;

      const envelope = await rowEnvelope(outboxId);
      assert.equal(
        envelope.traceparent,
        `00-${INCOMING_TRACE}-${serverSpan}-01`,
        "the row carries the RPC's span",
      );
      assert.equal(envelope.payload.trace_id, INCOMING_TRACE, "the record names its trace");
      if (backend === "mysql+kafka") {
        const headers = await kafkaMessages(testEnv.topic, outboxId);
        assert.equal(headers.traceparent, envelope.traceparent, "the Kafka message carries it as a header");
        assert.equal(headers.tracestate, "vendor=x");
      }
      const consumer = one(spans, SpanKind.CONSUMER, "consumer");
      assert.equal(
        consumer.parentSpanContext?.spanId,
        serverSpan,
        "the consumer span is the producer's child",
      );
      const post = one(spans, SpanKind.CLIENT, "provider request");
      assert.equal(post.name, "POST");
      assert.equal(post.parentSpanContext?.spanId, consumer.spanContext().spanId);
      assert.equal(post.attributes["http.response.status_code"], 200);
      assert.equal(post.attributes["server.address"], new URL(`https://${fake.host}`).hostname);

      const logged = logsOf(recordId);
      assert.ok(
        logged.some((line) => line.msg === "notification delivery attempt finished"),
        JSON.stringify(logged),
      );
      for (const line of logged)
        assert.equal(line.trace_id, INCOMING_TRACE, `${String(line.msg)} has the trace id`);
    });

    test("a Connect call (HTTP/1.1 JSON) continues its traceparent header too", async () => {
      const traceId = newTraceId();
      const response = await fetch(`http://127.0.0.1:${app.apiPort()}${OPS}/RequestFeishuNotification`, {
        method: "POST",
        headers: { "content-type": "application/json", traceparent: `00-${traceId}-${INCOMING_SPAN}-01` },
        body: JSON.stringify({
          eventId: "evt-asp_604",
          userId: "604",
          previewId: "asp_604",
          triggerType: "t",
          targetUrl: "/assistant/asp_604",
        }),
      });
      assert.equal(response.status, 200, await response.clone().text());
      const { outboxId } = (await response.json()) as { outboxId: string };
      const server = one(spansOf(traceId), SpanKind.SERVER, "server");
      assert.equal(server.parentSpanContext?.spanId, INCOMING_SPAN);
      assert.equal(
        (await rowEnvelope(Number(outboxId))).traceparent,
        `00-${traceId}-${server.spanContext().spanId}-01`,
      );
    });

    test("without an incoming context, the RPC starts a trace and the row carries it", async () => {
      await givenChannel(app, 602, fake.flowUrl("flowkey0602"));
      const receipt = await request(602n, "asp_602", {});
      const outboxId = Number(receipt.outboxId);
      const recordId = await recordOf(events, outboxId);
      await attemptOf(events, recordId);
      const envelope = await rowEnvelope(outboxId);
      const traceId = /^00-([0-9a-f]{32})-[0-9a-f]{16}-01$/.exec(envelope.traceparent ?? "")?.[1] ?? "";
      assert.notEqual(traceId, "", `a new trace on the row: ${envelope.traceparent}`);
      const spans = spansOf(traceId);
      assert.equal(one(spans, SpanKind.SERVER, "server").parentSpanContext, undefined, "a root span");
      one(spans, SpanKind.CONSUMER, "consumer");
      one(spans, SpanKind.CLIENT, "provider request");
    });

    test("a row a Go producer wrote continues its payload's W3C trace_id", async () => {
      await givenChannel(app, 603, fake.flowUrl("flowkey0603"));
      const goTrace = newTraceId();
      const outboxId = await requestNotification(app, {
        userId: 603,
        previewId: "asp_603",
        payload: { ...requestedPayload(603, "asp_603"), trace_id: goTrace },
      });
      assert.equal((await rowEnvelope(outboxId)).traceparent, undefined, "written outside any span: none");
      const recordId = await recordOf(events, outboxId);
      await attemptOf(events, recordId);
      const spans = spansOf(goTrace);
      const consumer = one(spans, SpanKind.CONSUMER, "consumer");
      assert.equal(
        one(spans, SpanKind.CLIENT, "provider request").parentSpanContext?.spanId,
        consumer.spanContext().spanId,
      );
      const logged = logsOf(recordId);
      assert.ok(logged.length > 0, "the notification's log lines were captured");
      for (const line of logged) assert.equal(line.trace_id, goTrace);
    });
  });
}
