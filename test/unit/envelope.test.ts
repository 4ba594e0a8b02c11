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
