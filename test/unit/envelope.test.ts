import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decodeKafkaEnvelope,
  decodeRowEnvelope,
  encodeKafkaEnvelope,
  encodeRowEnvelope,
} from "../../src/outbox/envelope.ts";

test("the row envelope is SmartFlow's JSON, omitting empty optional fields", () => {
  const text = encodeRowEnvelope({
    eventId: "asp_1",
    eventType: "notification.feishu.requested",
    eventVersion: "1",
    aggregateId: "",
    payload: '{"user_id":42}',
  });
  assert.equal(
    text,
    '{"event_id":"asp_1","event_type":"notification.feishu.requested","event_version":"1","payload":{"user_id":42}}',
  );
  const decoded = decodeRowEnvelope(text);
  assert.ok(decoded.ok);
  assert.equal(decoded.value.payload, '{"user_id":42}');
  assert.equal(decoded.value.aggregateId, "");
});

test("the row envelope keeps a producer's trace context as added optional fields, never in the Kafka value", () => {
  const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const text = encodeRowEnvelope({
    eventId: "asp_1",
    eventType: "notification.feishu.requested",
    eventVersion: "1",
    aggregateId: "a",
    payload: "{}",
    traceparent,
    tracestate: "vendor=x",
  });
  assert.equal(
    text,
    `{"event_id":"asp_1","event_type":"notification.feishu.requested","event_version":"1","aggregate_id":"a","payload":{},"traceparent":"${traceparent}","tracestate":"vendor=x"}`,
  );
  const decoded = decodeRowEnvelope(text);
  assert.ok(decoded.ok);
  assert.equal(decoded.value.traceparent, traceparent);
  assert.equal(decoded.value.tracestate, "vendor=x");
  const withoutState = decodeRowEnvelope(text.replace(',"tracestate":"vendor=x"', ""));
  assert.ok(withoutState.ok);
  assert.deepEqual(
    [withoutState.value.traceparent, "tracestate" in withoutState.value],
    [traceparent, false],
  );
  const goRow = decodeRowEnvelope('{"event_type":"x","payload":{}}');
  assert.ok(goRow.ok);
  assert.equal("traceparent" in goRow.value, false, "a Go row has none");
  assert.doesNotMatch(encodeKafkaEnvelope({ ...decoded.value, outboxId: 1, serviceName: "s" }), /trace/);
});

test("the Kafka envelope round-trips with outbox_id and service_name", () => {
  const text = encodeKafkaEnvelope({
    outboxId: 17,
    eventId: "asp_1",
    eventType: "notification.feishu.requested",
    eventVersion: "",
    aggregateId: "asp_1",
    payload: '{"a":[1,2]}',
    serviceName: "notification",
  });
  assert.deepEqual(JSON.parse(text), {
    outbox_id: 17,
    event_id: "asp_1",
    event_type: "notification.feishu.requested",
    aggregate_id: "asp_1",
    payload: { a: [1, 2] },
    service_name: "notification",
  });
  const decoded = decodeKafkaEnvelope(Buffer.from(text));
  assert.ok(decoded.ok);
  assert.equal(decoded.value.outboxId, 17);
  assert.equal(decoded.value.eventVersion, "");
});

test("undecodable envelopes say why, and keep the outbox id when there is one", () => {
  const cases: [string | null, RegExp, number | undefined][] = [
    [null, /no value/, undefined],
    ["{oops", /invalid JSON/, undefined],
    ["[1]", /not a JSON object/, undefined],
    ['{"event_type":"x","payload":{}}', /no valid outbox_id/, undefined],
    ['{"outbox_id":-3,"event_type":"x","payload":{}}', /no valid outbox_id/, undefined],
    ['{"outbox_id":5,"payload":{}}', /no event_type/, 5],
    ['{"outbox_id":5,"event_type":"x"}', /no payload/, 5],
  ];
  for (const [value, reason, outboxId] of cases) {
    const decoded = decodeKafkaEnvelope(value);
    assert.equal(decoded.ok, false, String(value));
    if (!decoded.ok) {
      assert.match(decoded.reason, reason);
      assert.equal(decoded.outboxId, outboxId);
    }
  }
  assert.equal(decodeRowEnvelope('{"event_type":"","payload":{}}').ok, false);
  assert.equal(decodeRowEnvelope('{"event_type":"x"}').ok, false);
});

test("the payload passes through both envelopes as its exact text: 64-bit ids are not rounded", () => {
  const payload = '{"user_id":9223372036854775807,"target_id":9007199254740993, "note":"x"}';
  const row = decodeRowEnvelope(`{"event_type":"t","payload":${payload},"payload_extra":1}`);
  assert.ok(row.ok);
  assert.equal(row.value.payload, payload);
  const message = decodeKafkaEnvelope(
    encodeKafkaEnvelope({ ...row.value, outboxId: 9, serviceName: "notification" }),
  );
  assert.ok(message.ok);
  assert.equal(message.value.payload, payload);
  // A duplicate key: the last one wins, as in JSON.parse and Go.
  const twice = decodeRowEnvelope('{"event_type":"t","payload":{"user_id":1},"payload":{"user_id":2}}');
  assert.ok(twice.ok);
  assert.equal(twice.value.payload, '{"user_id":2}');
});
