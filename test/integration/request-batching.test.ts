import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "kysely";
import mysql from "mysql2/promise";
import type { App } from "../../src/app.ts";
import { loadConfig } from "../../src/config/load-config.ts";
import { createDb } from "../../src/db/database.ts";
import {
  RequestFeishuNotificationRequestSchema,
  RequestFeishuNotificationResponseSchema,
} from "../../src/gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import { type grpc, rpcClient } from "../support/grpc-clients.ts";
import { type Backend, backends, createTestEnv, startApp, type TestEnv } from "../support/harness.ts";

const replacer = (_: string, v: unknown) => (typeof v === "bigint" ? String(v) : v);
const OPS = "/smartflow.notification.v1.NotificationOpsService";
const INVALID = 3;
const UNAVAILABLE = 14;

type Answer = { eventId: string; sent: string; dedupeKey: string; outboxId: bigint; duplicate: boolean };

function requestOf(eventId: string, dedupeKey: string, extra: object = {}) {
  return {
    eventId,
    userId: 77n,
    previewId: `asp_${eventId}`,
    triggerType: "batch_test",
    dedupeKey,
    targetUrl: `/assistant/${eventId}`,
    ...extra,
  };
}

function client(app: App) {
  const rpc = rpcClient(`127.0.0.1:${app.apiPort()}`);
  return {
    async call(eventId: string, dedupeKey: string, extra: object = {}): Promise<Answer> {
      const answer = await rpc.unary(
        `${OPS}/RequestFeishuNotification`,
        RequestFeishuNotificationRequestSchema,
        RequestFeishuNotificationResponseSchema,
        requestOf(eventId, dedupeKey, extra),
        { deadlineMs: 60_000 },
      );
      return {
        eventId,
        sent: dedupeKey,
        dedupeKey: answer.dedupeKey,
        outboxId: answer.outboxId,
        duplicate: answer.duplicate,
      };
    },
    close: () => rpc.close(),
  };
}

/** The outbox rows' event ids by outbox id, and the request keys, as committed. */
async function committed(app: Pick<App, "db" | "route">) {
  const read = async <T>(statement: string) => (await sql.raw(statement).execute(app.db.kysely)).rows as T[];
  const rows = await read<{ id: unknown; payload: string }>(`select id, payload from ${app.route.table}`);
  const keys = await read<{ event_id: string; outbox_id: unknown; dedupe_key: string }>(
    "select event_id, outbox_id, dedupe_key from notification_request_keys",
  );
  return {
    eventOf: new Map(rows.map((row) => [Number(row.id), String(JSON.parse(row.payload).event_id)])),
    keys: new Map(keys.map((k) => [k.event_id, { outboxId: Number(k.outbox_id), dedupeKey: k.dedupe_key }])),
  };
}

/**
 * Answers as a serial run would give them, in the order the first of each event id committed: one answer
 * per event id is not a duplicate and names a row of its own carrying that event id; every other answer for
 * that event id is a duplicate naming the same row and the first one's dedupe key.
 */
function assertSerial(answers: readonly Answer[], state: Awaited<ReturnType<typeof committed>>) {
  const byEvent = new Map<string, Answer[]>();
  for (const answer of answers) byEvent.set(answer.eventId, [...(byEvent.get(answer.eventId) ?? []), answer]);
  for (const [eventId, group] of byEvent) {
    const firsts = group.filter((a) => !a.duplicate);
    assert.equal(firsts.length, 1, `${eventId}: exactly one answer is not a duplicate`);
    const first = firsts[0] as Answer;
    const key = state.keys.get(eventId);
    assert.deepEqual(
      key,
      { outboxId: Number(first.outboxId), dedupeKey: first.dedupeKey },
      `${eventId}: key`,
    );
    assert.equal(first.dedupeKey, first.sent, `${eventId}: the first answers its own dedupe key`);
    assert.equal(state.eventOf.get(Number(first.outboxId)), eventId, `${eventId}: its row carries it`);
    for (const other of group) {
      assert.deepEqual(
        [other.outboxId, other.dedupeKey],
        [first.outboxId, first.dedupeKey],
        `${eventId}: same`,
      );
    }
  }
  assert.equal(state.eventOf.size, byEvent.size, "one outbox row per event id, none more");
}

for (const backend of backends) {
  describe(`RequestFeishuNotification batching (${backend})`, () => {
    let testEnv: TestEnv;
    let app: App;
    before(async () => {
      // A wait and one batch at a time: requests pile up into batches, and the next ones wait behind them.
      testEnv = await createTestEnv(backend as Backend, {
        REQUEST_BATCH_MAX_SIZE: "16",
        REQUEST_BATCH_MAX_WAIT_MS: "5",
        REQUEST_BATCH_CONCURRENCY: "1",
      });
      app = await startApp(testEnv);
    });
    after(async () => {
      await app.stop();
      await testEnv.dispose();
    });

    test("duplicates within a batch and across batches answer as serial requests would", async () => {
      const rpc = client(app);
      try {
        // 40 event ids, each sent 3 times at once with different dedupe keys (inside one batch or several),
        const first = await Promise.all(
          Array.from({ length: 120 }, (_, i) => rpc.call(`evt-dup-${i % 40}`, `key-${i % 40}-${i}`)),
        );
        // then every one again, with others new, after the first ones committed.
        const second = await Promise.all(
          Array.from({ length: 60 }, (_, i) => rpc.call(`evt-dup-${i}`, `later-${i}`)),
        );
        assertSerial([...first, ...second], await committed(app));
        for (const answer of second.slice(0, 40)) assert.equal(answer.duplicate, true, answer.eventId);
      } finally {
        rpc.close();
      }
    });

    test("an invalid request fails alone; its batch-mates are written", async () => {
      const rpc = client(app);
      try {
        const outcomes = await Promise.allSettled(
          Array.from({ length: 48 }, (_, i) =>
            rpc.call(
              `evt-mixed-${i}`,
              `mixed-${i}`,
              i % 6 === 0 ? { targetUrl: "https://evil.example/x" } : {},
            ),
          ),
        );
        outcomes.forEach((outcome, i) => {
          if (i % 6 === 0) {
            assert.equal(outcome.status, "rejected", `request ${i}`);
            assert.equal((outcome as PromiseRejectedResult).reason.code, INVALID, `request ${i}`);
          } else {
            assert.equal(
              outcome.status,
              "fulfilled",
              `request ${i}: ${String((outcome as { reason?: unknown }).reason)}`,
            );
          }
        });
        const state = await committed(app);
        for (let i = 0; i < 48; i++) assert.equal(state.keys.has(`evt-mixed-${i}`), i % 6 !== 0, `key ${i}`);
      } finally {
        rpc.close();
      }
    });
  });
}

describe("RequestFeishuNotification batching: a key another instance commits meanwhile (mysql+kafka)", () => {
  let testEnv: TestEnv;
  let app: App;
  let other: mysql.Connection;
  before(async () => {
    testEnv = await createTestEnv("mysql+kafka", {
      REQUEST_BATCH_MAX_SIZE: "16",
      REQUEST_BATCH_MAX_WAIT_MS: "20",
    });
    app = await startApp(testEnv);
    other = await mysql.createConnection({ uri: testEnv.env.DATABASE_URL ?? "" });
  });
  after(async () => {
    await other.end();
    await app.stop();
    await testEnv.dispose();
  });

  test("the clash answers its caller as a duplicate of the other's row; its batch-mates are written", async () => {
    // Another instance has written evt-clash's key and not committed yet: the batch's insert of that key waits.
    await other.query("begin");
    await other.query(
      "insert into notification_request_keys (event_id, outbox_id, dedupe_key, created_at) values (?, ?, ?, ?)",
      ["evt-clash", 999_999, "other-instance", "2026-03-02 10:00:00.000"],
    );
    const rpc = client(app);
    try {
      const ids = ["evt-clash-a", "evt-clash-b", "evt-clash", "evt-clash-c", "evt-clash-d"];
      let settled = false;
      const calls = Promise.allSettled(ids.map((id) => rpc.call(id, `k-${id}`))).finally(() => {
        settled = true;
      });
      // The batch's insert waits for the row lock on evt-clash's key, which `other`'s uncommitted row holds, in
      // this test's database (the server is shared). Read live, from SHOW ENGINE INNODB STATUS: the
      // information_schema tables innodb_trx / innodb_locks / innodb_lock_waits are served from a cache that
      // InnoDB refreshes only when nobody has read it for 100 ms, so a poll loop (this one, or any session's on
      // the shared server) keeps reading the snapshot taken before the batch began and never sees the wait.
      const [[{ db }]] = (await other.query("select database() as db")) as unknown as [[{ db: string }]];
      const escaped = `\`${db}\`.\`notification_request_keys\``.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      const waitOnKey = new RegExp(
        `TRX HAS BEEN WAITING [^\\n]* FOR THIS LOCK TO BE GRANTED:\\nRECORD LOCKS [^\\n]* of table ${escaped} [^\\n]* waiting\\n` +
          `Record lock, [^\\n]*\\n 0: len 9; hex ${Buffer.from("evt-clash").toString("hex")};`,
      );
      const waiting = async () => {
        const [rows] = await other.query("show engine innodb status");
        const status = String((rows as { Status: string }[])[0]?.Status);
        const transactions = status.slice(status.indexOf("\nTRANSACTIONS\n")); // not the last deadlock's report
        return waitOnKey.test(transactions);
      };
      const deadline = Date.now() + 30_000;
      while (!(await waiting())) {
        if (settled)
          assert.fail(`the calls ended without waiting on the key: ${JSON.stringify(await calls, replacer)}`);
        assert.ok(Date.now() < deadline, "the batch never waited on the key");
      }
      await other.query("commit");
      const outcomes = await calls;
      const answers = outcomes.map((o, i) => {
        assert.equal(o.status, "fulfilled", `${ids[i]}: ${String((o as { reason?: unknown }).reason)}`);
        return (o as PromiseFulfilledResult<Answer>).value;
      });
      const clash = answers[2] as Answer;
      assert.deepEqual(
        [clash.duplicate, clash.outboxId, clash.dedupeKey],
        [true, 999_999n, "other-instance"],
      );
      const state = await committed(app);
      for (const answer of answers.filter((a) => a !== clash)) {
        assert.equal(answer.duplicate, false, answer.eventId);
        assert.equal(state.eventOf.get(Number(answer.outboxId)), answer.eventId, answer.eventId);
      }
      assert.equal(state.eventOf.size, 4, "the clash left no row behind");
    } finally {
      rpc.close();
    }
  });
});

for (const backend of backends) {
  describe(`RequestFeishuNotification batching: shutdown (${backend})`, () => {
    test("stopping drains the queued batches: every accepted request is answered and committed", async () => {
      const testEnv = await createTestEnv(backend as Backend, {
        REQUEST_BATCH_MAX_SIZE: "4",
        REQUEST_BATCH_MAX_WAIT_MS: "10",
        REQUEST_BATCH_CONCURRENCY: "1",
      });
      const app = await startApp(testEnv);
      const rpc = client(app);
      let stopCalled = false;
      const answeredAfterStop: string[] = [];
      try {
        const calls = Array.from(
          { length: 40 },
          (_, i): Promise<Answer> =>
            rpc.call(`evt-stop-${i}`, `stop-${i}`).then((answer) => {
              if (stopCalled) answeredAfterStop.push(answer.eventId);
              return answer;
            }),
        );
        await Promise.race(calls);
        stopCalled = true;
        const stopped = app.stop();
        const outcomes = await Promise.allSettled(calls);
        await stopped;
        assert.ok(answeredAfterStop.length > 0, "batches still queued when stop began were written");
        const config = loadConfig(testEnv.env);
        const db = createDb(config.database.target, 1, config.database.timeZone);
        try {
          const state = await committed({ db, route: app.route });
          outcomes.forEach((outcome, i) => {
            if (outcome.status === "fulfilled") {
              assert.equal(state.keys.get(`evt-stop-${i}`)?.outboxId, Number(outcome.value.outboxId), `${i}`);
            } else {
              assert.equal(
                (outcome.reason as grpc.ServiceError).code,
                UNAVAILABLE,
                `${i}: ${outcome.reason}`,
              );
              assert.equal(state.keys.has(`evt-stop-${i}`), false, `${i}: refused, nothing written`);
            }
          });
        } finally {
          await db.close();
        }
      } finally {
        rpc.close();
        await app.stop();
        await testEnv.dispose();
      }
    });
  });
}
