import { sql } from "kysely";
import { truncateCodePoints } from "../../lib/text.ts";
import type { RecordQueries } from "../ports/record-store.ts";
import { MANUAL_RETRY, RecordStatus } from "../record-state.ts";
import { type RecordsTable, selectRecords, toRecord } from "./record-rows.ts";

/** The operations API's statements. */
export function createRecordQueries(table: RecordsTable): RecordQueries {
  const { db, traits } = table;
  return {
    async get(id) {
      const row = await selectRecords(table).where("id", "=", id).executeTakeFirst();
      return row ? toRecord(table, row) : undefined;
    },

    async listByUser(userId, status, limit, beforeId) {
      let query = selectRecords(table).where("user_id", "=", userId).orderBy("id", "desc").limit(limit);
      if (status) query = query.where("status", "=", status);
      if (beforeId !== undefined) query = query.where("id", "<", beforeId);
      return (await query.execute()).map((row) => toRecord(table, row));
    },

    /** `max_attempts` is raised past `attempt_count`, so the record has one attempt left. */
    async retryNow(id, reason, now) {
      const result = await db
        .updateTable("notification_records")
        .set({
          status: RecordStatus.pending,
          max_attempts: sql`case when attempt_count + 1 > max_attempts then attempt_count + 1 else max_attempts end`,
          next_retry_at: null,
          last_error_code: MANUAL_RETRY,
          last_error: truncateCodePoints(reason, 2000),
          lease_until: null,
          claim_token: null,
          updated_at: traits.time(now),
        })
        .where("id", "=", id)
        .where("status", "in", [RecordStatus.failed, RecordStatus.dead])
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async countByStatus() {
      const rows = await db
        .selectFrom("notification_records")
        .select((eb) => ["status", eb.fn.countAll<number>().as("n")])
        .groupBy("status")
        .execute();
      // COUNT(*) is a BIGINT: mysql2 may hand it over as a string.
      return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
    },
  };
}
