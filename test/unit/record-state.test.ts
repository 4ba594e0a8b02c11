import assert from "node:assert/strict";
import { test } from "node:test";
import type { SendResult } from "../../src/notifications/ports/delivery-provider.ts";
import { attemptResult, isClaimable, needsSend } from "../../src/notifications/record-state.ts";
import { aRecord } from "../support/records.ts";

const now = new Date("2026-03-02T10:00:00Z");
const past = new Date(now.getTime() - 1);
const future = new Date(now.getTime() + 60_000);
const sent = (result: Partial<SendResult> & Pick<SendResult, "outcome">): SendResult => ({
  requestPayload: { sent: true },
  responsePayload: { status_code: 200 },
  ...result,
});
const retryDelayMs = (failures: number) => failures * 1_000;

test("an event queues a send for a waiting, due or abandoned record, and for nothing else", () => {
  const cases: [Parameters<typeof aRecord>[0], boolean][] = [
    [{ status: "pending" }, true],
    [{ status: "failed", nextRetryAt: past }, true],
    [{ status: "failed", nextRetryAt: null }, true],
    [{ status: "failed", nextRetryAt: future }, false],
    [{ status: "sending", leaseUntil: past }, true],
    [{ status: "sending", leaseUntil: future }, false],
    [{ status: "sent" }, false],
    [{ status: "dead" }, false],
    [{ status: "skipped" }, false],
  ];
  for (const [overrides, expected] of cases) {
    assert.equal(needsSend(aRecord(overrides), now, 60_000), expected, JSON.stringify(overrides));
  }
});

test("a Go-era sending record (no lease_until) is judged by updated_at + the lease, as Go judged it", () => {
  const leaseMs = 10 * 60_000;
  const goSending = (minutesAgo: number) =>
    aRecord({
      status: "sending",
      attemptCount: 1,
      leaseUntil: null,
      updatedAt: new Date(now.getTime() - minutesAgo * 60_000),
    });
  assert.equal(needsSend(goSending(30), now, leaseMs), true, "30 min without news: the sender is gone");
  assert.equal(isClaimable(goSending(30), now, leaseMs), true);
  assert.equal(needsSend(goSending(5), now, leaseMs), false, "5 min: Go's lease still runs");
  assert.equal(isClaimable(goSending(5), now, leaseMs), false);
  assert.equal(isClaimable(goSending(10), now, leaseMs), true, "the lease ends at updated_at + lease");
  assert.equal(
    needsSend(aRecord({ status: "sending", leaseUntil: future, updatedAt: new Date(0) }), now, leaseMs),
    false,
    "a lease this service wrote wins over updated_at",
  );
});

test("a claim needs attempts left as well", () => {
  assert.equal(isClaimable(aRecord({ status: "pending", attemptCount: 4 }), now, 60_000), true);
  assert.equal(isClaimable(aRecord({ status: "pending", attemptCount: 5 }), now, 60_000), false);
  assert.equal(
    isClaimable(aRecord({ status: "sending", attemptCount: 5, leaseUntil: past }), now, 60_000),
    false,
  );
  assert.equal(
    isClaimable(aRecord({ status: "failed", attemptCount: 2, maxAttempts: 0 }), now, 60_000),
    true,
  );
});

test("a finished attempt: sent, skipped, dead, or failed with the next attempt scheduled", () => {
  const record = aRecord({ status: "sending", attemptCount: 2 });
  const ok = attemptResult(
    record,
    "tok",
    sent({ outcome: "success", providerMessageId: "pm" }),
    now,
    retryDelayMs,
  );
  assert.deepEqual(ok, {
    id: 1,
    claimToken: "tok",
    status: "sent",
    lastErrorCode: null,
    lastError: null,
    nextRetryAt: null,
    sentAt: now,
    providerMessageId: "pm",
    requestJson: '{"sent":true}',
    responseJson: '{"status_code":200}',
  });
  const skipped = attemptResult(record, "tok", sent({ outcome: "skipped" }), now, retryDelayMs);
  assert.deepEqual(
    [skipped.status, skipped.lastErrorCode, skipped.sentAt],
    ["skipped", "recipient_missing", null],
  );
  const permanent = attemptResult(
    record,
    "tok",
    sent({ outcome: "permanent_fail", errorCode: "provider_auth_failed", errorMessage: "19021" }),
    now,
    retryDelayMs,
  );
  assert.deepEqual(
    [permanent.status, permanent.lastErrorCode, permanent.lastError],
    ["dead", "provider_auth_failed", "19021"],
  );
  const temporary = attemptResult(record, "tok", sent({ outcome: "temporary_fail" }), now, retryDelayMs);
  assert.deepEqual(
    [temporary.status, temporary.lastErrorCode, temporary.nextRetryAt?.getTime()],
    ["failed", "network_error", now.getTime() + 2_000],
    "the delay is the schedule's for the attempts made",
  );
});

test("the last attempt's temporary failure is dead, with its error kept", () => {
  const last = aRecord({ status: "sending", attemptCount: 5 });
  const result = attemptResult(
    last,
    "tok",
    sent({ outcome: "temporary_fail", errorCode: "provider_5xx", errorMessage: "HTTP 502" }),
    now,
    retryDelayMs,
  );
  assert.deepEqual(
    [result.status, result.lastErrorCode, result.lastError, result.nextRetryAt],
    ["dead", "provider_5xx", "HTTP 502", null],
  );
});
