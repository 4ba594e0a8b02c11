import { sql } from "kysely";
import { RECORD_CHANNEL_NAME } from "../channel.ts";
import type { RecordId } from "../ids.ts";
import type { RecordIntake } from "../ports/record-store.ts";
import type { IntakeItem, IntakeResult, NotificationRecord } from "../record.ts";
import { DEFAULT_MAX_ATTEMPTS, RecordStatus } from "../record-state.ts";
import { type RecordsTable, selectRecords, toRecord } from "./record-rows.ts";

/**
 * One SELECT for the batch's dedupe keys (and named records), one multi-row INSERT for the keys not found
 * (the unique key `(channel, dedupe_key)` settles races between instances: a key another instance inserted
 * meanwhile is left as it is), one SELECT for what was inserted. Not `INSERT … IGNORE`: IGNORE also turns
 * every other error into a warning, such as an id out of the column's range, which MySQL would then store
 * folded onto the range's end (user 2^31 became user 2^31 − 1 before 64-bit ids).
 */
export function createRecordIntake(table: RecordsTable): RecordIntake {
  return {
    async intake(items, now) {
      if (items.length === 0) return [];
      const { byKey, byId } = await findExisting(table, items);
      const existed = new Set(byKey.keys());
      const firstOfKey = new Map<string, IntakeItem>();
      for (const item of items) {
        const key = item.payload.dedupeKey;
        if (!byKey.has(key) && !firstOfKey.has(key)) firstOfKey.set(key, item);
      }
      if (firstOfKey.size > 0) {
        for (const record of await insertMissing(table, [...firstOfKey.values()], now)) {
          byKey.set(record.dedupeKey, record);
        }
      }
      const claimedFirst = new Set<string>();
      return items.map((item): IntakeResult => {
        const key = item.payload.dedupeKey;
        const named = byId.get(item.payload.notificationId);
        const record = named && named.dedupeKey === key ? named : byKey.get(key);
        if (!record) throw new Error(`record for dedupe key ${key} vanished during intake`);
        const reused = existed.has(key) || claimedFirst.has(key);
        claimedFirst.add(key);
        return { record, reused };
      });
    },
  };
}

async function findExisting(table: RecordsTable, items: readonly IntakeItem[]) {
  const keys = [...new Set(items.map((item) => item.payload.dedupeKey))];
  const namedIds = items.map((item) => item.payload.notificationId).filter((id) => id > 0);
  const found = await selectRecords(table)
    .where("channel", "=", RECORD_CHANNEL_NAME)
    .where((eb) =>
      eb.or([eb("dedupe_key", "in", keys), ...(namedIds.length > 0 ? [eb("id", "in", namedIds)] : [])]),
    )
    .execute();
  const byKey = new Map<string, NotificationRecord>();
  const byId = new Map<RecordId, NotificationRecord>();
  for (const record of found.map((row) => toRecord(table, row))) {
    byId.set(record.id, record);
    byKey.set(record.dedupeKey, record);
  }
  return { byKey, byId };
}

async function insertMissing(table: RecordsTable, items: readonly IntakeItem[], now: Date) {
  const stamp = table.traits.time(now);
  await table.db
    .insertInto("notification_records")
    .values(
      items.map(({ payload, texts }) => ({
        channel: RECORD_CHANNEL_NAME,
        user_id: payload.userId,
        trigger_id: payload.triggerId,
        preview_id: payload.previewId,
        trigger_type: payload.triggerType,
        target_type: payload.targetType,
        target_id: payload.targetId,
        dedupe_key: payload.dedupeKey,
        target_url: payload.targetUrl,
        summary_text: texts.summaryText,
        fallback_text: texts.fallbackText,
        fallback_used: texts.fallbackUsed ? 1 : 0,
        status: RecordStatus.pending,
        attempt_count: 0,
        max_attempts: DEFAULT_MAX_ATTEMPTS,
        trace_id: payload.traceId,
        created_at: stamp,
        updated_at: stamp,
      })),
    )
    .$call((insert) =>
      table.traits.dialect === "mysql"
        ? insert.onDuplicateKeyUpdate({ id: sql`id` })
        : insert.onConflict((conflict) => conflict.doNothing()),
    )
    .execute();
  const inserted = await selectRecords(table)
    .where("channel", "=", RECORD_CHANNEL_NAME)
    .where(
      "dedupe_key",
      "in",
      items.map((item) => item.payload.dedupeKey),
    )
    .execute();
  return inserted.map((row) => toRecord(table, row));
}
