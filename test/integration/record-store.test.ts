import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { App } from "../../src/app.ts";
import { migrateToLatest } from "../../src/db/migrations.ts";
import type { NotificationRecord } from "../../src/notifications/record.ts";
import { isClaimable, RecordStatus, SENDING_LEASE_EXPIRED } from "../../src/notifications/record-state.ts";
import { backends, createTestEnv, startApp, type TestEnv } from "../support/harness.ts";

const MINUTE = 60_000;
/** DELIVERY_SENDING_LEASE_MS's default, Go's 10 minutes. */
const LEASE = 10 * MINUTE;

/**
 * The records table's SQL against record-state.ts's rules, on both databases: the claim takes exactly the
 * claimable records (its SET order differs between MySQL and SQLite), a stale writer changes nothing, and
 * exhausted leases end dead.
 */
for (const backend of backends) {
  describe(`the records' SQL on ${backend}`, () => {
    let testEnv: TestEnv;
    let app: App;
    let next = 0;
    const now = new Date("2026-03-02T10:00:00Z");
    before(async () => {
      testEnv = await createTestEnv(backend);
      // Not started: nothing claims or sends these records behind the test's back.
      app = await startApp(testEnv, { start: false });
      await migrateToLatest(app.db.kysely, app.db.traits, { outbox: app.route.table });
    });
    after(async () => {
      await app.db.close();
      await testEnv.dispose();
    });

    /** A record in the given state (times relative to `now`). */
    async function given(state: {
      status: string;
      attempts?: number;
      maxAttempts?: number;
      nextRetryInMs?: number;
      leaseInMs?: number;
      /** When the row was last written (default: now); Go's `sending` rows are judged by it. */
      updatedInMs?: number;
      createdInMs?: number;
      lastErrorCode?: string;
      token?: string;
    }): Promise<NotificationRecord> {
      const n = ++next;
      const [taken] = await app.records.intake(
        [
          {
            payload: {
              notificationId: 0,
              userId: BigInt(500 + n),
              triggerId: `t${n}`,
              previewId: `p${n}`,
              triggerType: "unfinished_feedback",
              targetType: "task",
              targetId: BigInt(n),
              dedupeKey: `store:${backend}:${n}`,
              targetUrl: `/assistant/c${n}`,
              summaryText: "",
              fallbackText: "",
              traceId: "",
              requestedAt: now,
            },
            texts: { summaryText: "s", fallbackText: "f", fallbackUsed: false },
          },
        ],
        now,
      );
      assert.ok(taken);
      const at = (ms: number | undefined) =>
        ms === undefined ? null : app.db.traits.time(new Date(now.getTime() + ms));
      await app.db.kysely
        .updateTable("notification_records")
        .set({
          status: state.status,
          attempt_count: state.attempts ?? 0,
          max_attempts: state.maxAttempts ?? 5,
          next_retry_at: at(state.nextRetryInMs),
          lease_until: at(state.leaseInMs),
          last_error_code: state.lastErrorCode ?? null,
          claim_token: state.token ?? null,
          updated_at: app.db.traits.time(new Date(now.getTime() + (state.updatedInMs ?? 0))),
          created_at: app.db.traits.time(new Date(now.getTime() + (state.createdInMs ?? 0))),
        })
        .where("id", "=", taken.record.id)
        .execute();
      const record = await app.records.get(taken.record.id);
      assert.ok(record);
      return record;
    }

    test("a claim takes exactly the records isClaimable allows, and marks a reclaimed lease", async () => {
      const records = [
        await given({ status: "pending" }),
        await given({ status: "failed", attempts: 1, nextRetryInMs: -1, lastErrorCode: "provider_5xx" }),
        await given({ status: "failed", attempts: 1, nextRetryInMs: MINUTE }),
        await given({ status: "sending", attempts: 1, leaseInMs: -1, token: "old" }),
        await given({ status: "sending", attempts: 1, leaseInMs: MINUTE, token: "live" }),
        await given({ status: "sending", attempts: 5, leaseInMs: -1, token: "exhausted" }),
        await given({ status: "failed", attempts: 5, nextRetryInMs: -1 }),
        await given({ status: "pending", attempts: 2, maxAttempts: 0 }),
        await given({ status: "sent", attempts: 1 }),
        await given({ status: "dead", attempts: 5 }),
        await given({ status: "skipped", attempts: 1 }),
        // Left in `sending` by SmartFlow's Go service: no lease_until, judged by updated_at + the lease.
        await given({ status: "sending", attempts: 1, updatedInMs: -30 * MINUTE }),
        await given({ status: "sending", attempts: 1, updatedInMs: -5 * MINUTE }),
        await given({ status: "sending", attempts: 5, updatedInMs: -30 * MINUTE }),
      ];
      const expected = records.filter((r) => isClaimable(r, now, LEASE)).map((r) => r.id);
      assert.equal(
        expected.length,
        5,
        "pending, due failed, expired lease, pending without max_attempts, Go's sending 30 min ago",
      );
      const leaseUntil = new Date(now.getTime() + 10 * MINUTE);
      const claimed = await app.records.claim(
        records.map((r) => r.id),
        now,
        leaseUntil,
        "claim-1",
      );
      assert.deepEqual(
        claimed.map((r) => r.id).sort((a, b) => a - b),
        expected,
      );
      for (const record of claimed) {
        const before = records.find((r) => r.id === record.id);
        assert.equal(record.status, RecordStatus.sending);
        assert.equal(record.attemptCount, (before?.attemptCount ?? 0) + 1, "the claim counts the attempt");
        assert.equal(record.leaseUntil?.getTime(), leaseUntil.getTime());
        assert.equal(record.maxAttempts, 5);
        // SET reads `status` before it changes on MySQL and SQLite alike.
        assert.equal(
          record.lastErrorCode,
          before?.status === RecordStatus.sending ? SENDING_LEASE_EXPIRED : (before?.lastErrorCode ?? null),
          `last_error_code of a record that was ${before?.status}`,
        );
      }
      const untouched = await Promise.all(
        records.filter((r) => !expected.includes(r.id)).map((r) => app.records.get(r.id)),
      );
      assert.deepEqual(
        untouched.map((r) => [r?.status, r?.attemptCount]),
        records.filter((r) => !expected.includes(r.id)).map((r) => [r.status, r.attemptCount]),
      );
    });

    test("a result written after another instance reclaimed the record is dropped (the stale writer)", async () => {
      const record = await given({ status: "pending" });
      const [first] = await app.records.claim([record.id], now, new Date(now.getTime() + MINUTE), "writer-a");
      assert.ok(first);
      // Writer A's lease runs out while its POST hangs; writer B reclaims the record and sends it.
      const later = new Date(now.getTime() + 2 * MINUTE);
      const [second] = await app.records.claim(
        [record.id],
        later,
        new Date(later.getTime() + MINUTE),
        "writer-b",
      );
      assert.equal(second?.attemptCount, 2);
      const result = (claimToken: string, status: "sent" | "failed") => ({
        id: record.id,
        claimToken,
        status,
        lastErrorCode: status === "failed" ? "provider_timeout" : null,
        lastError: null,
        nextRetryAt: null,
        sentAt: status === "sent" ? later : null,
        providerMessageId: null,
        requestJson: null,
        responseJson: null,
      });
      assert.deepEqual([...(await app.records.recordResults([result("writer-a", "failed")], later))], []);
      const meanwhile = await app.records.get(record.id);
      assert.deepEqual([meanwhile?.status, meanwhile?.lastErrorCode], ["sending", SENDING_LEASE_EXPIRED]);
      assert.deepEqual(
        [...(await app.records.recordResults([result("writer-b", "sent")], later))],
        [record.id],
      );
      const final = await app.records.get(record.id);
      assert.deepEqual([final?.status, final?.lastErrorCode, final?.leaseUntil], ["sent", null, null]);
      assert.deepEqual(
        [...(await app.records.recordResults([result("writer-a", "failed")], later))],
        [],
        "nor after the record is finished",
      );
    });

    test("killExhaustedLeases: an expired lease with no attempts left is dead with the lease marker", async () => {
      const exhausted = await given({ status: "sending", attempts: 5, leaseInMs: -1, token: "gone" });
      const withAttemptsLeft = await given({ status: "sending", attempts: 2, leaseInMs: -1, token: "gone" });
      const stillLeased = await given({ status: "sending", attempts: 5, leaseInMs: MINUTE, token: "busy" });
      const failedOut = await given({ status: "failed", attempts: 5, nextRetryInMs: -1 });
      const goExhausted = await given({ status: "sending", attempts: 5, updatedInMs: -11 * MINUTE });
      const goLeased = await given({ status: "sending", attempts: 5, updatedInMs: -9 * MINUTE });
      const goRetriable = await given({ status: "sending", attempts: 1, updatedInMs: -30 * MINUTE });
      const killed = await app.records.killExhaustedLeases(now);
      assert.ok(killed >= 2);
      const read = async (r: NotificationRecord) => {
        const row = await app.records.get(r.id);
        return [row?.status, row?.lastErrorCode, row?.leaseUntil === null];
      };
      assert.deepEqual(await read(exhausted), ["dead", SENDING_LEASE_EXPIRED, true]);
      assert.deepEqual(await read(withAttemptsLeft), ["sending", null, false], "the retry scan reclaims it");
      assert.deepEqual(await read(stillLeased), ["sending", null, false], "its sender may still finish");
      assert.deepEqual(await read(failedOut), ["failed", null, true]);
      assert.deepEqual(await read(goExhausted), ["dead", SENDING_LEASE_EXPIRED, true], "Go's, lease over");
      assert.deepEqual(await read(goLeased), ["sending", null, true], "Go's, within its lease");
      const due = await app.records.findDue(now, new Date(now.getTime() - MINUTE), 1_000);
      assert.ok(
        due.some((d) => d.id === withAttemptsLeft.id),
        "an expired lease with attempts left is due",
      );
      assert.ok(
        due.some((d) => d.id === goRetriable.id),
        "so is Go's sending record 30 min later",
      );
      assert.ok(!due.some((d) => [exhausted.id, goExhausted.id, goLeased.id].includes(d.id)));
    });

    test("expireOld: work the scan would find, created before the limit, is dead (expired); nothing else", async () => {
      const DAY = 24 * 60 * MINUTE;
      const old = { createdInMs: -7 * DAY };
      const oldPending = await given({ status: "pending", ...old, updatedInMs: -7 * DAY });
      const oldFailed = await given({ status: "failed", attempts: 1, nextRetryInMs: -1, ...old });
      const oldGoSending = await given({ status: "sending", attempts: 1, ...old, updatedInMs: -7 * DAY });
      const oldLeased = await given({
        status: "sending",
        attempts: 1,
        leaseInMs: MINUTE,
        token: "t",
        ...old,
      });
      const oldNotDue = await given({ status: "failed", attempts: 1, nextRetryInMs: MINUTE, ...old });
      const oldOperatorRetry = await given({
        status: "pending",
        lastErrorCode: "manual_retry",
        ...old,
        updatedInMs: -DAY,
      });
      const oldSent = await given({ status: "sent", attempts: 1, ...old });
      const youngPending = await given({ status: "pending", createdInMs: -DAY / 2, updatedInMs: -DAY / 2 });
      const expired = await app.records.expireOld(
        now,
        new Date(now.getTime() - 2 * MINUTE),
        new Date(now.getTime() - DAY),
        "not sent: too old",
      );
      assert.equal(expired, 3);
      const read = async (r: NotificationRecord) => {
        const row = await app.records.get(r.id);
        return [row?.status, row?.lastErrorCode, row?.lastError];
      };
      for (const r of [oldPending, oldFailed, oldGoSending]) {
        assert.deepEqual(await read(r), ["dead", "expired", "not sent: too old"]);
      }
      assert.deepEqual((await read(oldLeased)).slice(0, 2), ["sending", null], "its sender may finish");
      assert.deepEqual((await read(oldNotDue)).slice(0, 2), ["failed", null]);
      assert.deepEqual((await read(oldOperatorRetry)).slice(0, 2), ["pending", "manual_retry"]);
      assert.deepEqual((await read(oldSent)).slice(0, 2), ["sent", null]);
      assert.deepEqual((await read(youngPending)).slice(0, 2), ["pending", null]);
    });

    test("an operator's retry gives a failed or dead record one more attempt, and nothing else", async () => {
      const dead = await given({ status: "dead", attempts: 5 });
      const sent = await given({ status: "sent", attempts: 1 });
      assert.equal(await app.records.retryNow(dead.id, "webhook fixed", now), true);
      assert.equal(await app.records.retryNow(sent.id, "no", now), false);
      const retried = await app.records.get(dead.id);
      assert.deepEqual(
        [retried?.status, retried?.attemptCount, retried?.maxAttempts, retried?.lastErrorCode],
        ["pending", 5, 6, "manual_retry"],
      );
      assert.ok(retried && isClaimable(retried, now, LEASE));
    });
  });
}
