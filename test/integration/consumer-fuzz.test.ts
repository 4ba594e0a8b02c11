/**
 * Property-based input tests (fast-check) of the outbox consumer: random and mutated Kafka values and
 * `notification.feishu.requested` payloads (test/support/outbox-arbitrary.ts) go through the real path — the
 * bus (Kafka, or the in-process bus on the embedded SQLite), decoding, the real handler and the record intake
 * — for rows the test wrote as claimed. For each batch: nothing crashes, the consumer accounts for every
 * message (it keeps up), every row a message names ends `consumed` or `dead` with a reason, and a message
 * that names no row changes nothing. FUZZ_RUNS cases per backend (default 1,000 for the suite;
 * `make fuzz-consumer` runs 100,000), FUZZ_BATCH of them per property run.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import type { App } from "../../src/app.ts";
import type { OutgoingMessage } from "../../src/messaging/bus.ts";
import { backends, createTestEnv, outboxRows, startApp, type TestEnv } from "../support/harness.ts";
import { type FuzzCase, fuzzCase } from "../support/outbox-arbitrary.ts";

const RUNS = Number(process.env.FUZZ_RUNS ?? 1_000);
const BATCH = Number(process.env.FUZZ_BATCH ?? 250);

type Outcomes = Record<"consumed" | "dead" | "retried" | "deferred" | "skipped", readonly number[]>;

/** What the consumer reported so far: rows settled, and messages dropped; awaited, never polled. */
function consumerLedger(app: App) {
  const settled = new Set<number>();
  let dropped = 0;
  let wake: () => void = () => undefined;
  app.events.on("consumer:outcomes", (event) => {
    const o = event as Outcomes;
    for (const id of [...o.consumed, ...o.dead, ...o.retried, ...o.deferred, ...o.skipped]) settled.add(id);
    wake();
  });
  app.events.on("consumer:dropped", () => {
    dropped++;
    wake();
  });
  return {
    dropped: () => dropped,
    async until(what: () => string, done: () => boolean, timeoutMs = 120_000) {
      const timer = setTimeout(() => wake(), timeoutMs);
      const deadline = Date.now() + timeoutMs;
      try {
        while (!done()) {
          if (Date.now() >= deadline) throw new Error(`the consumer fell behind: ${what()}`);
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
      } finally {
        clearTimeout(timer);
      }
    },
    settled,
  };
}

/** What the broker accepts in one request (its `message.max.bytes` is 1 MiB), as the relay keeps under it. */
const MAX_PUBLISH_BYTES = 900 * 1024;

for (const backend of backends.filter((b) => (process.env.FUZZ_BACKENDS ?? b).split(",").includes(b))) {
  describe(`consumer fuzz on ${backend}`, () => {
    let testEnv: TestEnv;
    let app: App;
    let ledger: ReturnType<typeof consumerLedger>;
    let nextId = 1;
    before(async () => {
      // No channels: a taken-in record fails at once (nothing to send), so the fuzz stays on the intake.
      testEnv = await createTestEnv(backend, { FEISHU_ALLOWED_HOSTS: "127.0.0.1:9" });
      app = await startApp(testEnv);
      ledger = consumerLedger(app);
    });
    after(async () => {
      await app?.stop();
      await testEnv?.dispose();
    });

    /** Writes the batch's rows as a relay leaves them (claimed, acknowledged), then publishes the values. */
    async function deliver(cases: readonly FuzzCase[]) {
      const now = new Date();
      const t = app.db.traits.time;
      const ids: number[] = [];
      const messages: OutgoingMessage[] = cases.map((c, i) => {
        const id = nextId++;
        ids.push(id);
        // A Buffer, not a string: the bytes go out as they are (invalid UTF-8 included); both buses take it.
        return { key: String(i % 17), value: c.value(id) as unknown as string };
      });
      // A message the broker would refuse is never published (the relay makes such a row dead instead).
      const sent = messages.map((m) => m.value.length + m.key.length <= MAX_PUBLISH_BYTES);
      await app.db.kysely
        .insertInto(app.route.table as "notification_outbox_messages")
        .values(
          ids.map((id) => ({
            id,
            biz_type: "notification.feishu.requested",
            service_name: "notification",
            topic: app.route.topic,
            message_key: "fuzz",
            payload: "{}",
            status: "published",
            published_at: t(now),
            created_at: t(now),
            updated_at: t(now),
          })),
        )
        .execute();
      let chunk: OutgoingMessage[] = [];
      let bytes = 0;
      for (const [i, message] of messages.entries()) {
        if (!sent[i]) continue;
        if (bytes + message.value.length > MAX_PUBLISH_BYTES) {
          await app.bus.publish(app.route.topic, chunk);
          chunk = [];
          bytes = 0;
        }
        chunk.push(message);
        bytes += message.value.length;
      }
      if (chunk.length > 0) await app.bus.publish(app.route.topic, chunk);
      return { ids, sent };
    }

    test(`${RUNS} random and mutated messages: each row consumed or dead with a reason, none lost`, {
      timeout: 30 * 60_000,
    }, async () => {
      let cases = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(fuzzCase, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
          const droppedBefore = ledger.dropped();
          const { ids, sent } = await deliver(batch);
          const named = ids.filter((_, i) => sent[i] && batch[i]?.namesRow);
          const stray = ids.filter((_, i) => sent[i] && !batch[i]?.namesRow);
          await ledger.until(
            () =>
              `${named.filter((id) => ledger.settled.has(id)).length}/${named.length} rows settled, ${ledger.dropped() - droppedBefore}/${stray.length} stray messages dropped; not settled: ${named
                .filter((id) => !ledger.settled.has(id))
                .slice(0, 3)
                .map((id) => batch[ids.indexOf(id)]?.value(id).subarray(0, 400).toString("utf8"))
                .join(" | ")}`,
            () =>
              named.every((id) => ledger.settled.has(id)) && ledger.dropped() - droppedBefore >= stray.length,
          );
          const rows = new Map((await outboxRows(app, ids)).map((row) => [row.id, row]));
          ids.forEach((id, i) => {
            const row = rows.get(id);
            const sample = batch[i]?.value(id).subarray(0, 300).toString("utf8") ?? "";
            if (sent[i] && batch[i]?.namesRow) {
              assert.ok(
                row?.status === "consumed" || (row?.status === "dead" && (row.last_error ?? "").length > 0),
                `row ${id}: ${row?.status} (${row?.last_error?.slice(0, 300)}) for ${sample}`,
              );
            } else {
              assert.equal(
                row?.status,
                "published",
                `a message naming no row (or none) changed row ${id}: ${sample}`,
              );
            }
          });
          cases += batch.length;
        }),
        { numRuns: Math.max(1, Math.ceil(RUNS / BATCH)), endOnFailure: true },
      );
      assert.ok(cases >= RUNS);
    });
  });
}
