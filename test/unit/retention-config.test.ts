import assert from "node:assert/strict";
import { test } from "node:test";
import { retentionRules } from "../../src/app/retention-wiring.ts";
import { ConfigError, loadConfig } from "../../src/config/load-config.ts";

const base = { DATABASE_URL: "sqlite::memory:" };

test("retention is on by default: consumed 7 days, sent and skipped 30, dead 90", () => {
  const { retention } = loadConfig(base);
  assert.equal(retention.consumedDays, 7);
  assert.equal(retention.recordsDays, 30);
  assert.equal(retention.deadDays, 90);
  assert.equal(retention.batchSize, 500);
  const rules = retentionRules(retention, "notification_outbox_messages");
  const keep = Object.fromEntries(rules.map((r) => [`${r.table}:${r.status ?? "*"}`, r.keepMs / 86_400_000]));
  assert.deepEqual(keep, {
    "notification_outbox_messages:consumed": 7,
    "notification_outbox_messages:dead": 90,
    "notification_records:sent": 30,
    "notification_records:skipped": 30,
    "notification_records:dead": 90,
    "notification_request_keys:*": 30,
  });
});

test("no rule names a status still in flight", () => {
  const rules = retentionRules(loadConfig(base).retention, "t");
  for (const status of ["pending", "published", "sending", "failed"]) {
    assert.ok(!rules.some((rule) => rule.status === status), status);
  }
});

test("dead rows may not be deleted before consumed or sent ones", () => {
  assert.throws(() => loadConfig({ ...base, RETENTION_DEAD_DAYS: "10" }), ConfigError);
  assert.throws(() => loadConfig({ ...base, RETENTION_CONSUMED_DAYS: "0" }), /RETENTION_DEAD_DAYS/);
  assert.equal(
    loadConfig({ ...base, RETENTION_DEAD_DAYS: "0", RETENTION_CONSUMED_DAYS: "0" }).retention.deadDays,
    0,
  );
  assert.equal(loadConfig({ ...base, RETENTION_DEAD_DAYS: "30" }).retention.deadDays, 30);
});
