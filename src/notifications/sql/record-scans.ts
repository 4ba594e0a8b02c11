import { sql } from "kysely";
import { int64Column, toInt64 } from "../../db/int64-column.ts";
import type { RecordScans } from "../ports/record-store.ts";
import type { DueRecord } from "../record.ts";
import {
  DEFAULT_MAX_ATTEMPTS,
  EXPIRED,
  LEASE_EXHAUSTED_MESSAGE,
  MANUAL_RETRY,
  RecordStatus,
  SENDING_LEASE_EXPIRED,
} from "../record-state.ts";
import { leaseExpired, type RecordsTable } from "./record-rows.ts";

const attemptsLeft = sql<boolean>`attempt_count < case when max_attempts > 0 then max_attempts else ${DEFAULT_MAX_ATTEMPTS} end`;

/** The retry loop's statements. */
export function createRecordScans(table: RecordsTable): RecordScans {
  const { db, traits } = table;
  const t = traits.time;
  return {
    async killExhaustedLeases(now) {
      const stamp = t(now);
      const result = await db
        .updateTable("notification_records")
        .set({
          status: RecordStatus.dead,
          last_error_code: SENDING_LEASE_EXPIRED,
          last_error: LEASE_EXHAUSTED_MESSAGE,
          lease_until: null,
          claim_token: null,
          updated_at: stamp,
        })
        .where(leaseExpired(table, now))
        .where((eb) => eb.not(attemptsLeft))
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    /**
     * What `findDue` would find, created at or before `createdBefore`, ends `dead` (`expired`) instead. A record
     * an operator sent back (`manual_retry`) keeps its attempt whatever its age.
     */
    async expireOld(now, strandedBefore, createdBefore, reason) {
      const result = await db
        .updateTable("notification_records")
        .set({
          status: RecordStatus.dead,
          last_error_code: EXPIRED,
          last_error: reason,
          next_retry_at: null,
          lease_until: null,
          claim_token: null,
          updated_at: t(now),
        })
        .where("created_at", "<=", t(createdBefore))
        .where((eb) => eb.or([eb("last_error_code", "is", null), eb("last_error_code", "!=", MANUAL_RETRY)]))
        .where((eb) =>
          eb.or([
            eb.and([eb("status", "=", RecordStatus.failed), eb("next_retry_at", "<=", t(now))]),
            leaseExpired(table, now)(eb),
            eb.and([eb("status", "=", RecordStatus.pending), eb("updated_at", "<=", t(strandedBefore))]),
          ]),
        )
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    /** Three index-friendly queries (one per kind of work), merged oldest id first. */
    async findDue(now, strandedBefore, limit) {
      const stamp = t(now);
      const due = () => db.selectFrom("notification_records").select(["id", int64Column("user_id")]);
      const pick = (query: ReturnType<typeof due>) => query.orderBy("id").limit(limit).execute();
      const [failed, expired, stranded] = await Promise.all([
        pick(due().where("status", "=", RecordStatus.failed).where("next_retry_at", "<=", stamp)),
        pick(due().where(leaseExpired(table, now))),
        pick(due().where("status", "=", RecordStatus.pending).where("updated_at", "<=", t(strandedBefore))),
      ]);
      return [...failed, ...expired, ...stranded]
        .map((row): DueRecord => ({ id: row.id, userId: toInt64(row.user_id) }))
        .sort((a, b) => a.id - b.id)
        .slice(0, limit);
    },
  };
}
