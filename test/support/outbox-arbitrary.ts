/**
 * Arbitraries of what may arrive on the outbox topic, for the consumer fuzzer: Kafka values that name a row
 * (`outbox_id` intact) with random and mutated envelopes and `notification.feishu.requested` payloads — wrong
 * types, missing fields, huge strings, invalid UTF-8 bytes, deep nesting, numbers at 2^31, 2^53, 2^63 and past
 * them, duplicated keys — and values that name none (random bytes, broken JSON, a bad `outbox_id`).
 * JSON is built as text, member by member, so that duplicated keys and exact big literals survive.
 */
import fc from "fast-check";

/** Replaced by invalid UTF-8 bytes once the text is encoded (it only appears inside string literals). */
const BAD_UTF8_MARK = "\u0001BAD\u0001";
const BAD_UTF8 = [
  Buffer.from([0xff]),
  Buffer.from([0xc3, 0x28]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
];

export interface FuzzCase {
  /** The row it names, or none (the consumer cannot tell which row it was for). */
  readonly namesRow: boolean;
  /** Builds the Kafka value for the row `id` (ignored when it names no row). */
  readonly value: (id: number) => Buffer;
}

const member = (key: string, raw: string) => `${JSON.stringify(key)}:${raw}`;
const object = (members: readonly string[]) => `{${members.join(",")}}`;

const boundaryNumbers = [
  "0",
  "-0",
  "1",
  "-1",
  "2147483647",
  "2147483648",
  "-2147483648",
  "-2147483649",
  "4294967296",
  "9007199254740991",
  "9007199254740992",
  "9007199254740993",
  "-9007199254740993",
  "9223372036854775807",
  "9223372036854775808",
  "-9223372036854775808",
  "-9223372036854775809",
  "18446744073709551616",
  "1e308",
  "1e309",
  "1.5",
  "1E3",
  "0.0000001",
];

const hugeString = fc
  .record({
    unit: fc.constantFrom("x", "界", "😀", "\\u0000", '\\\\\\"'),
    length: fc.constantFrom(300, 70_000, 200_000),
  })
  .map(({ unit, length }) => `"${unit.repeat(Math.ceil(length / unit.length))}"`);

const deepNesting = fc
  .record({ depth: fc.constantFrom(100, 5_000, 100_000), open: fc.constantFrom("[", '{"a":') })
  .map(({ depth, open }) => `${open.repeat(depth)}1${(open === "[" ? "]" : "}").repeat(depth)}`);

/** Any JSON value as text: the hostile ones weighted up. */
const hostileValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 3, arbitrary: fc.constantFrom(...boundaryNumbers) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 40 }).map((s) => JSON.stringify(s)) },
  { weight: 1, arbitrary: fc.constant(`"a${BAD_UTF8_MARK}b"`) },
  { weight: 1, arbitrary: fc.constant('"\\ud800 lone surrogate"') },
  { weight: 1, arbitrary: hugeString },
  { weight: 1, arbitrary: deepNesting },
);

/** A valid value of each payload field (unique per case where it matters), as JSON text. */
function validFields(tag: string): Record<string, string> {
  return {
    user_id: "42",
    trigger_id: JSON.stringify(`ast_${tag}`),
    preview_id: JSON.stringify(`asp_${tag}`),
    trigger_type: '"unfinished_feedback"',
    target_type: '"task"',
    target_id: "7",
    dedupe_key: JSON.stringify(`42:fuzz:${tag}`),
    target_url: JSON.stringify(`/assistant/fuzz-${tag}`),
    summary_text: '"明天上午的两个任务时间冲突"',
    fallback_text: '"你有一条新的日程调整建议"',
    trace_id: JSON.stringify(`trace_${tag}`),
    requested_at: '"2026-03-02T10:41:00+08:00"',
    notification_id: "0",
  };
}

type FieldFate = "valid" | "missing" | "hostile" | "duplicate";
const fieldFate = fc.constantFrom<FieldFate>(
  "valid",
  "valid",
  "valid",
  "valid",
  "missing",
  "hostile",
  "duplicate",
);

/** A payload: SmartFlow's fields, each kept, dropped, replaced by a hostile value or written twice. */
const mutatedPayload = fc
  .record({
    tag: fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 12 }),
    fates: fc.array(fc.tuple(fieldFate, hostileValue), { minLength: 13, maxLength: 13 }),
    extra: fc.array(fc.tuple(fc.string({ maxLength: 8 }), hostileValue), { maxLength: 2 }),
  })
  .map(({ tag, fates, extra }) => {
    const members: string[] = [];
    Object.entries(validFields(tag)).forEach(([key, valid], i) => {
      const [fate, hostile] = fates[i] ?? ["valid", valid];
      if (fate === "valid") members.push(member(key, valid));
      else if (fate === "hostile") members.push(member(key, hostile));
      else if (fate === "duplicate") members.push(member(key, valid), member(key, hostile));
    });
    for (const [key, value] of extra) members.push(member(key, value));
    return object(members);
  });

const payloadText = fc.oneof(
  { weight: 6, arbitrary: mutatedPayload },
  { weight: 1, arbitrary: hostileValue },
);

const envelopeField = (valid: string) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant<string | undefined>(valid) },
    { weight: 1, arbitrary: fc.constant<string | undefined>(undefined) },
    { weight: 2, arbitrary: hostileValue },
  );

/** A Kafka value naming its row, with the envelope's other members mutated. */
const rowMessage: fc.Arbitrary<FuzzCase> = fc
  .record({
    eventType: envelopeField('"notification.feishu.requested"'),
    eventVersion: envelopeField('"1"'),
    eventId: envelopeField('"evt"'),
    aggregateId: envelopeField('"agg"'),
    serviceName: fc.constantFrom<string | undefined>(undefined, '"notification"', '""'),
    payload: fc.option(payloadText, { nil: undefined, freq: 20 }),
    duplicateType: fc.option(hostileValue, { nil: undefined, freq: 10 }),
  })
  .map((c) => ({
    namesRow: true,
    value: (id: number) => {
      const members = [member("outbox_id", String(id))];
      const add = (key: string, raw: string | undefined) => {
        if (raw !== undefined) members.push(member(key, raw));
      };
      add("event_id", c.eventId);
      add("event_type", c.eventType);
      if (c.duplicateType !== undefined) add("event_type", c.duplicateType);
      add("event_version", c.eventVersion);
      add("aggregate_id", c.aggregateId);
      add("payload", c.payload);
      add("service_name", c.serviceName);
      return encode(object(members));
    },
  }));

/** A value that names no row: random bytes, broken JSON, or an `outbox_id` that is no id. */
const strayMessage: fc.Arbitrary<FuzzCase> = fc
  .oneof(
    fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
    fc.string({ unit: "binary", maxLength: 100 }).map((s) => encode(`{"outbox_id":${s}`)),
    fc
      .constantFrom(
        '"12"',
        "0",
        "-1",
        "1.5",
        "null",
        "9007199254740993",
        "[1]",
        '{"id":1}',
        `"${BAD_UTF8_MARK}"`,
      )
      .map((id) => encode(`{"outbox_id":${id},"event_type":"notification.feishu.requested","payload":{}}`)),
    fc.constant(encode("")),
  )
  .map((bytes) => ({ namesRow: false, value: () => bytes }));

export const fuzzCase: fc.Arbitrary<FuzzCase> = fc.oneof(
  { weight: 9, arbitrary: rowMessage },
  { weight: 1, arbitrary: strayMessage },
);

/** UTF-8 bytes of `text`, with each mark replaced by an invalid sequence. */
function encode(text: string): Buffer {
  const parts = text.split(BAD_UTF8_MARK);
  const out: Buffer[] = [];
  parts.forEach((part, i) => {
    if (i > 0) out.push(BAD_UTF8[i % BAD_UTF8.length] as Buffer);
    out.push(Buffer.from(part, "utf8"));
  });
  return Buffer.concat(out);
}
