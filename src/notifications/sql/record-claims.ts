import { sql } from "kysely";
import { truncateCodePoints } from "../../lib/text.ts";
import type { RecordId } from "../ids.ts";
import type { RecordClaims } from "../ports/record-store.ts";
import {
  DEFAULT_MAX_ATTEMPTS,
  LEASE_EXPIRED_MESSAGE,
  RecordStatus,
  SENDING_LEASE_EXPIRED,
} from "../record-state.ts";
import { leaseExpired, type RecordsTable, selectRecords, toRecord } from "./record-rows.ts";

const maxAttempts = sql<number>`case when max_attempts > 0 then max_attempts else ${DEFAULT_MAX_ATTEMPTS} end`;

/**
 * The dispatcher's statements. A claim is one compare-and-set UPDATE over a batch of ids (record-state.ts
 * `isClaimable`, in SQL), tagged with a token that tells afterwards which rows it won; every result write is
 * guarded by that token and the `sending` status, so a writer whose lease expired and was reclaimed changes
 * nothing.
 */
export function createRecordClaims(table: RecordsTable): RecordClaims {
  const { db, traits } = table;
  const t = traits.time;
  return {
    async claim(ids, now, leaseUntil, token) {
      if (ids.length === 0) return [];
      const stamp = t(now);
      // MySQL evaluates SET assignments left to right with already-updated values, SQLite with the old ones:
      // the assignments that read `status` therefore come before the one that changes it.
      await db
        .updateTable("notification_records")
        .set({
          last_error_code: sql`case when status = ${RecordStatus.sending} then ${SENDING_LEASE_EXPIRED} else last_error_code end`,
          last_error: sql`case when status = ${RecordStatus.sending} then ${LEASE_EXPIRED_MESSAGE} else last_error end`,
          status: RecordStatus.sending,
          attempt_count: sql`attempt_count + 1`,
          max_attempts: maxAttempts,
          next_retry_at: null,
          lease_until: t(leaseUntil),
          claim_token: token,
          updated_at: stamp,
        })
        .where("id", "in", ids)
        .where(sql<boolean>`attempt_count < ${maxAttempts}`)
        .where((eb) =>
          eb.or([
            eb("status", "=", RecordStatus.pending),
            eb.and([eb("status", "=", RecordStatus.failed), eb("next_retry_at", "<=", stamp)]),
            leaseExpired(table, now)(eb),
          ]),
        )
        .execute();
      const rows = await selectRecords(table)
        .where("id", "in", ids)
        .where("claim_token", "=", token)
        .execute();
      return rows.map((row) => toRecord(table, row));
    },

    async recordResults(results, now) {
      const written = new Set<RecordId>();
      if (results.length === 0) return written;
      await db.transaction().execute(async (trx) => {
        for (const result of results) {
          const update = await trx
            .updateTable("notification_records")
            .set({
              status: result.status,
              last_error_code: result.lastErrorCode,
              last_error: result.lastError === null ? null : truncateCodePoints(result.lastError, 2000),
              next_retry_at: result.nextRetryAt ? t(result.nextRetryAt) : null,
              ...(result.sentAt ? { sent_at: t(result.sentAt) } : {}),
              ...(result.providerMessageId ? { provider_message_id: result.providerMessageId } : {}),
              provider_request_json: result.requestJson,
              provider_response_json: result.responseJson,
              lease_until: null,
              claim_token: null,
              updated_at: t(now),
            })
            .where("id", "=", result.id)
            .where("status", "=", RecordStatus.sending)
            .where("claim_token", "=", result.claimToken)
            .executeTakeFirst();
          if (Number(update.numUpdatedRows) === 1) written.add(result.id);
        }
      });
      return written;
    },
  };
}
