import assert from "node:assert/strict";
import { test } from "node:test";
import { trace } from "@opentelemetry/api";
import {
  carrierOf,
  contextOfCarrier,
  contextOfTraceId,
  formatTraceparent,
  markTracingStarted,
  parseTraceparent,
} from "../../src/lib/trace-context.ts";
import { payloadTraceId } from "../../src/notifications/feishu-requested-payload.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";

test("traceparent: a valid one is read as a remote parent and written back the same", () => {
  const parsed = parseTraceparent(`00-${TRACE}-${SPAN}-01`, "a=1,b=2");
  assert.deepEqual(
    [parsed?.traceId, parsed?.spanId, parsed?.traceFlags, parsed?.isRemote, parsed?.traceState?.get("b")],
    [TRACE, SPAN, 1, true, "2"],
  );
  assert.equal(formatTraceparent(parsed as NonNullable<typeof parsed>), `00-${TRACE}-${SPAN}-01`);
  assert.equal(
    parseTraceparent(` 00-${TRACE.toUpperCase()}-${SPAN}-00 `)?.traceFlags,
    0,
    "trimmed, any case",
  );
  assert.equal(
    parseTraceparent(`01-${TRACE}-${SPAN}-01-future`)?.traceId,
    TRACE,
    "a later version's extra part",
  );
  assert.deepEqual(
    carrierOf(contextOfCarrier({ traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: "a=1" })),
    {
      traceparent: `00-${TRACE}-${SPAN}-01`,
      tracestate: "a=1",
    },
  );
});

test("traceparent: malformed or invalid ones are ignored", () => {
  for (const bad of [
    undefined,
    "",
    "garbage",
    `ff-${TRACE}-${SPAN}-01`,
    `00-${TRACE}-${SPAN}-01-extra`,
    `00-${"0".repeat(32)}-${SPAN}-01`,
    `00-${TRACE}-${"0".repeat(16)}-01`,
    `00-${TRACE.slice(1)}-${SPAN}-01`,
    `00-${TRACE}-${SPAN}-1`,
  ]) {
    assert.equal(parseTraceparent(bad), undefined, String(bad));
    assert.equal(
      contextOfCarrier(bad === undefined ? undefined : { traceparent: bad }),
      undefined,
      String(bad),
    );
  }
});

test("a payload's trace_id is continued only when it is a W3C trace id, and only with an SDK", () => {
  assert.equal(contextOfTraceId(TRACE), undefined, "no SDK: nothing to continue it into");
  markTracingStarted();
  const context = contextOfTraceId(payloadTraceId(`{"user_id":1,"trace_id":" ${TRACE} "}`));
  const spanContext = context ? trace.getSpanContext(context) : undefined;
  assert.equal(spanContext?.traceId, TRACE);
  assert.equal(spanContext?.traceFlags, 1);
  for (const payload of [
    '{"trace_id":"trace_asp_1"}',
    `{"trace_id":"${"0".repeat(32)}"}`,
    "{}",
    "not json",
    "[1]",
  ]) {
    assert.equal(contextOfTraceId(payloadTraceId(payload)), undefined, payload);
  }
});
