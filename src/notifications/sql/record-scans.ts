import { sql } from "kysely";
import { int64Column, toInt64 } from "../../db/int64-column.ts";
import type { RecordScans } from "../ports/record-store.ts";
import type { DueRecord } from "../record.ts";
import {
  DEFAULT_MAX_ATTEMPTS,
  LEASE_EXHAUSTED_MESSAGE,
  RecordStatus,
  SENDING_LEASE_EXPIRED,
} from "../record-state.ts";
import type { RecordsTable } from "./record-rows.ts";

/** The retry loop's statements. */
export function createRecordScans({ db, traits }: RecordsTable): RecordScans {
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
        .where("status", "=", RecordStatus.sending)
        .where("lease_until", "<=", stamp)
        .where(
          sql<boolean>`attempt_count >= case when max_attempts > 0 then max_attempts else ${DEFAULT_MAX_ATTEMPTS} end`,
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
        pick(due().where("status", "=", RecordStatus.sending).where("lease_until", "<=", stamp)),
        pick(due().where("status", "=", RecordStatus.pending).where("updated_at", "<=", t(strandedBefore))),
      ]);
      return [...failed, ...expired, ...stranded]
        .map((row): DueRecord => ({ id: row.id, userId: toInt64(row.user_id) }))
        .sort((a, b) => a.id - b.id)
        .slice(0, limit);
    },
  };
}
