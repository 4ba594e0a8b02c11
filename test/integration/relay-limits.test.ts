import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { App } from "../../src/app.ts";
import { FEISHU_REQUESTED_EVENT } from "../../src/notifications/feishu-requested-payload.ts";
import { recordingHandler } from "../support/handlers.ts";
import {
  backends,
  createTestEnv,
  outboxRows,
  recordEvents,
  startApp,
  type TestEnv,
} from "../support/harness.ts";

type Outcomes = { consumed: number[]; dead: number[] };

/** A valid payload padded with an extra member (`filler`, raw JSON) to reach a size or a depth. */
function payloadWith(userId: number, previewId: string, filler: string) {
  return `{"user_id":${userId},"preview_id":"${previewId}","dedupe_key":"${userId}:limits:${previewId}","target_url":"/assistant/x","requested_at":"2026-03-02T10:41:00+08:00","filler":${filler}}`;
}

async function enqueue(app: App, payload: string) {
  return app.db.kysely.transaction().execute((trx) =>
    app.enqueuer.enqueue(trx, {
      eventType: FEISHU_REQUESTED_EVENT,
      eventVersion: "1",
      messageKey: "9",
      payload,
    }),
  );
}

for (const backend of backends) {
  describe(`relay limits on ${backend}`, () => {
    let testEnv: TestEnv;
    before(async () => {
      testEnv = await createTestEnv(backend);
    });
    after(async () => {
      await testEnv.dispose();
    });

    test("a message over OUTBOX_MAX_MESSAGE_BYTES is never published: its row is dead with its size; its batch-mates go out", async () => {
      const { calls, handler } = recordingHandler();
      const app = await startApp(testEnv, { handlers: [handler], start: false });
      const events = recordEvents(app);
      try {
        await app.start();
        // 1 MiB: what Kafka's default message.max.bytes refuses; a default-config relay must not try.
        const huge = await enqueue(app, payloadWith(9, "huge", `"${"x".repeat(1024 * 1024)}"`));
        const under = await enqueue(app, payloadWith(9, "under", `"${"y".repeat(800 * 1024)}"`));
        // Deeply nested JSON is carried as text: it goes through the relay and the consumer unharmed.
        const deep = await enqueue(
          app,
          payloadWith(9, "deep", `${"[".repeat(100_000)}${"]".repeat(100_000)}`),
        );
        await events.until(
          "every row is settled",
          () => {
            const settled = events
              .of<Outcomes>("consumer:outcomes")
              .flatMap((o) => [...o.consumed, ...o.dead]);
            const relayDead = events.of<{ ids: number[] }>("relay:dead").flatMap((e) => e.ids);
            return relayDead.includes(huge) && settled.includes(under) && settled.includes(deep);
          },
          60_000,
        );
        const rows = new Map((await outboxRows(app, [huge, under, deep])).map((r) => [r.id, r]));
        assert.equal(rows.get(huge)?.status, "dead");
        assert.match(
          rows.get(huge)?.last_error ?? "",
          /^message too large to publish: 10\d{5} bytes \(key and value\), over OUTBOX_MAX_MESSAGE_BYTES \(921600\)/,
        );
        assert.equal(rows.get(huge)?.retry_count, 0, "refused at once, not retried");
        assert.equal(rows.get(under)?.status, "consumed");
        assert.equal(rows.get(deep)?.status, "consumed");
        assert.ok(!calls.some((c) => c.outboxId === huge));
      } finally {
        await app.stop();
      }
    });
  });
}
