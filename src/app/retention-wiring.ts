import type { Config } from "../config/load-config.ts";
import { RecordStatus } from "../notifications/record-state.ts";
import { OutboxStatus } from "../outbox/outbox-status.ts";
import { createRetentionJob, type RetentionJob } from "../retention/retention-job.ts";
import type { ExpiryRule } from "../retention/retention-store.ts";
import { createRetentionStore } from "../retention/retention-store.ts";
import type { Infrastructure } from "./infrastructure.ts";

const DAY_MS = 86_400_000;

/**
 * What the retention job deletes (RETENTION_* keys): final rows only. Outbox rows `consumed` and `dead`;
 * records `sent`, `skipped` and `dead`; the RPC's idempotency keys with the records they led to. Rows still
 * in flight (outbox `pending`/`published`, records `pending`/`sending`/`failed`) have no rule, whatever their
 * age.
 */
export function retentionRules(retention: Config["retention"], outboxTable: string): ExpiryRule[] {
  const { consumedDays, recordsDays, deadDays } = retention;
  const rule = (table: string, status: string, days: number): ExpiryRule => ({
    table,
    status,
    column: "updated_at",
    key: "id",
    keepMs: days * DAY_MS,
  });
  return [
    rule(outboxTable, OutboxStatus.consumed, consumedDays),
    rule(outboxTable, OutboxStatus.dead, deadDays),
    rule("notification_records", RecordStatus.sent, recordsDays),
    rule("notification_records", RecordStatus.skipped, recordsDays),
    rule("notification_records", RecordStatus.dead, deadDays),
    {
      table: "notification_request_keys",
      column: "created_at",
      key: "event_id",
      keepMs: recordsDays * DAY_MS,
    },
  ];
}

export function wireRetention(infra: Infrastructure): RetentionJob {
  const { config, db, clock, logger, events, route } = infra;
  return createRetentionJob({
    store: createRetentionStore(db.kysely, db.traits),
    clock,
    logger: logger.child({ component: "retention" }),
    events,
    options: {
      rules: retentionRules(config.retention, route.table),
      intervalMs: config.retention.intervalMs,
      batchSize: config.retention.batchSize,
      batchPauseMs: config.retention.batchPauseMs,
    },
  });
}
