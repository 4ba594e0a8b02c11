import assert from "node:assert/strict";
import { test } from "node:test";
import { context, ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { startTracing, tracingPlan } from "../../src/app/tracing-sdk.ts";
import { loadConfig } from "../../src/config/load-config.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { carrierOf, contextOfCarrier, inSpan, SpanKind } from "../../src/lib/trace-context.ts";

const plan = (env: Record<string, string>) => tracingPlan(loadConfig(env).tracing);

test("no OTEL_* key: no SDK is started, and the API stays the no-op one", async () => {
  assert.equal(plan({}).kind, "off");
  const tracing = startTracing(plan({}), silentLogger);
  assert.equal(tracing.started, false);
  const span = trace.getTracer("probe").startSpan("probe");
  assert.equal(span.isRecording(), false, "the global tracer records nothing");
  assert.equal(span.spanContext().traceId, "00000000000000000000000000000000", "no trace is made up");
  await inSpan("probe", { kind: SpanKind.INTERNAL }, async () => {
    assert.equal(context.active(), ROOT_CONTEXT, "no context manager tracks anything");
  });
  // What is carried explicitly is carried all the same.
  const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  assert.deepEqual(carrierOf(contextOfCarrier({ traceparent })), { traceparent });
});

test("the standard keys decide: disabled, exporter none, an endpoint, a service name, console", () => {
  assert.deepEqual(
    plan({ OTEL_SDK_DISABLED: "true", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" }),
    {
      kind: "off",
      reason: "OTEL_SDK_DISABLED=true",
    },
  );
  assert.equal(plan({ OTEL_SDK_DISABLED: "TRUE", OTEL_SERVICE_NAME: "x" }).kind, "off");
  assert.equal(
    plan({ OTEL_SDK_DISABLED: "yes", OTEL_SERVICE_NAME: "x" }).kind,
    "otlp",
    "only 'true' disables",
  );
  assert.equal(
    plan({ OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://h:4318" }).kind,
    "off",
  );
  assert.deepEqual(plan({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" }), {
    kind: "otlp",
    serviceName: "smartflow-notification",
  });
  assert.deepEqual(
    plan({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://h:4318/v1/traces", OTEL_SERVICE_NAME: "n1" }),
    {
      kind: "otlp",
      serviceName: "n1",
    },
  );
  assert.equal(plan({ OTEL_TRACES_EXPORTER: "console" }).kind, "console");
  assert.equal(plan({ OTEL_TRACES_EXPORTER: "console,otlp" }).kind, "otlp");
  assert.equal(plan({ OTEL_TRACES_EXPORTER: "zipkin" }).kind, "off");
  assert.equal(plan({ OTEL_SERVICE_NAME: "   " }).kind, "off", "a blank value is unset");
});
